"""`passes/cse.py`: what merges, what never does, which node survives, and that one run is linear and final."""

from __future__ import annotations

import time

import numpy as np
import pytest

from optimizer import Graph, PassContext, PassManager, Tensor, function_pass, get_pass
from optimizer.protos import AttrValue, NodeDef, TensorProto
from passes.cse import CommonSubexpressions, _without_name, merge_refusal
from tests.passes.build import const, graph, lowered, node, placeholder
from tests.passes.runnable import build, check_outputs, constant, lift, ops, optimized, tf

CSE = "cse"


def run(g: Graph) -> bool:
    return PassManager(CSE).run(g).changed


def test_registered_under_its_name() -> None:
    assert get_pass(CSE) is CommonSubexpressions


def test_equal_constants_and_the_ops_reading_them_merge() -> None:
    def body() -> None:
        x = tf.compat.v1.placeholder(tf.float32, [2, 3], name="x")
        first = tf.raw_ops.Mul(x=x, y=constant([1.0, 2.0, 3.0]))
        second = tf.raw_ops.Mul(x=x, y=constant([1.0, 2.0, 3.0]))
        tf.raw_ops.AddV2(x=tf.raw_ops.Tanh(x=first), y=tf.raw_ops.Tanh(x=second), name="y")

    g = optimized(build(body), CSE, inputs=["x"], outputs=["y"])
    assert ops(g) == {"Placeholder": 1, "Const": 1, "Mul": 1, "Tanh": 1, "AddV2": 1}


def test_constants_compare_by_value_not_by_encoding() -> None:
    packed = TensorProto()
    packed.CopyFrom(tf.make_tensor_proto(np.array([1.5, 1.5], np.float32)))  # tensor_content
    repeated = tf.make_tensor_proto(1.5, dtype=tf.float32, shape=[2])  # one float_val, repeated
    assert packed != repeated
    g = graph(
        node("a", "Const", T=None, dtype=tf.float32, value=AttrValue(tensor=packed)),
        node("b", "Const", T=None, dtype=tf.float32, value=AttrValue(tensor=repeated)),
        const("c", [1.5, 1.5], dtype=tf.float64),  # same numbers, another dtype
        const("d", [[1.5, 1.5]]),  # another shape
        node("y", "AddV2", "a", "b"),
        node("z", "Cast", "c", T=None, SrcT=tf.float64, DstT=tf.float32),
        node("w", "AddV2", "y", "d"),
        outputs=["z", "w"],
    )
    assert run(g)
    assert lowered(g)["y"] == ("AddV2", ["a", "a"]) and {"c", "d"} <= set(g)


def test_negative_zero_is_not_zero() -> None:
    g = graph(const("p", [0.0]), const("n", [-0.0]), node("y", "AddV2", "p", "n"), outputs=["y"])
    assert not run(g)


def test_input_order_matters_except_for_commutative_ops() -> None:
    g = graph(
        placeholder("a"),
        placeholder("b"),
        node("s1", "Sub", "a", "b"),
        node("s2", "Sub", "b", "a"),
        node("m1", "Mul", "a", "b"),
        node("m2", "Mul", "b", "a"),
        node("y", "AddN", "s1", "s2", "m1", "m2", N=4),
        inputs=["a", "b"],
        outputs=["y"],
    )
    assert run(g)
    assert lowered(g)["y"][1] == ["s1", "s2", "m1", "m1"]


def test_string_add_is_not_commutative() -> None:
    g = graph(
        placeholder("a", tf.string),
        placeholder("b", tf.string),
        node("ab", "Add", "a", "b", T=tf.string),
        node("ba", "Add", "b", "a", T=tf.string),
        node("y", "Add", "ab", "ba", T=tf.string),
        inputs=["a", "b"],
        outputs=["y"],
    )
    assert not run(g)


def test_control_inputs_compare_as_a_set() -> None:
    g = graph(
        placeholder("x"),
        node("g1", "Tanh", "x"),
        node("g2", "Sigmoid", "x"),
        node("a", "Neg", "x", "^g1", "^g2"),
        node("b", "Neg", "x", "^g2", "^g1"),
        node("c", "Neg", "x", "^g1"),
        node("y", "AddN", "a", "b", "c", N=3),
        inputs=["x"],
        outputs=["y"],
    )
    assert run(g)
    assert lowered(g)["y"][1] == ["a", "a", "c"]


def test_device_and_attrs_must_match() -> None:
    gpu = node("b", "Neg", "x")
    gpu.device = "/device:GPU:0"
    g = graph(
        placeholder("x"),
        node("a", "Neg", "x"),
        gpu,
        node("c", "Neg", "x", _class=AttrValue(list=AttrValue.ListValue(s=[b"loc:@x"]))),
        node("y", "AddN", "a", "b", "c", N=3),
        inputs=["x"],
        outputs=["y"],
    )
    assert not run(g)


def test_constants_without_inputs_merge_whatever_their_names_and_only_when_equal() -> None:
    long_a, long_b = "a" * 300, "b" * 300  # names over 127 bytes take two length bytes when serialized
    gpu = const("on_gpu", [1.0, 2.0])
    gpu.device = "/device:GPU:0"
    g = graph(
        placeholder("x"),
        const(long_a, [1.0, 2.0]),
        const(long_b, [1.0, 2.0]),
        const("c", [1.0, 2.0]),
        const("other", [1.0, 3.0]),
        const("double", [1.0, 2.0], dtype=tf.float64),
        gpu,
        node("y", "AddN", "x", long_a, long_b, "c", "other", "on_gpu", N=6),
        node("z", "Cast", "double", T=None, SrcT=tf.float64, DstT=tf.float32),
        inputs=["x"],
        outputs=["y", "z"],
    )
    assert run(g)
    assert lowered(g)["y"][1] == ["x", long_a, long_a, long_a, "other", "on_gpu"]
    assert "double" in g


@pytest.mark.parametrize("name", ["", "c", "n" * 127, "n" * 128, "n" * 20000])
def test_without_name_drops_exactly_the_name_field(name: str) -> None:
    proto = const(name, [1.0, 2.0])
    proto.device = "/device:CPU:0"
    expected = NodeDef()
    expected.CopyFrom(proto)
    expected.ClearField("name")
    assert _without_name(proto.SerializeToString(deterministic=True)) == expected.SerializeToString(deterministic=True)


def test_keys_of_large_constants_are_remembered_across_runs_until_a_constant_changes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import passes.cse as cse

    digested: list[str] = []
    digest = cse._const_digest

    def digesting(g: Graph, name: str) -> bytes | tuple[str, tuple[int, ...], bytes]:
        digested.append(name)
        return digest(g, name)

    monkeypatch.setattr(cse, "_const_digest", digesting)
    zeros, ones, twos = (np.full(cse.REMEMBERED_ELEMENTS + 1, value) for value in (0.0, 1.0, 2.0))
    g = graph(
        const("a", zeros), const("b", ones), const("c", twos), node("ya", "Neg", "a"), node("yb", "Neg", "b"),
        outputs=["ya", "yb", "c"],
    )  # fmt: skip
    seen: list[tuple[int, set[str]]] = []  # (constants digested, constants remembered) after each cse

    @function_pass("rewire", register=False)
    def rewire(g: Graph, ctx: PassContext) -> None:  # edges change, the constants do not
        seen.append((len(digested), set(g.memo[cse._DIGESTS])))
        g.set_input("ya", 0, Tensor("c"))

    @function_pass("retype", register=False)
    def retype(g: Graph, ctx: PassContext) -> None:  # b changes in place, and now equals a
        seen.append((len(digested), set(g.memo[cse._DIGESTS])))
        g.set_attr("b", "value", g.node("a").attrs["value"])
        g.set_input("ya", 0, Tensor("a"))

    @function_pass("look", register=False)
    def look(g: Graph, ctx: PassContext) -> None:
        seen.append((len(digested), set(g.memo[cse._DIGESTS])))

    PassManager(
        [CommonSubexpressions(), rewire(), CommonSubexpressions(), retype(), CommonSubexpressions(), look()]
    ).run(g)
    assert sorted(digested[:3]) == ["a", "b", "c"] and digested[3:] == ["b"]  # b again, and nothing else
    assert seen == [(3, {"a", "b", "c"}), (3, {"a", "b", "c"}), (4, {"a", "c"})]  # what cse merged away is forgotten
    assert "b" not in g and g.inputs_of("yb") == [Tensor("a")]
    assert g.memo == {}  # the manager's run is over


def test_stateful_ops_placeholders_and_control_flow_never_merge() -> None:
    g = graph(
        placeholder("x"),
        placeholder("x2"),
        const("shape", [2], dtype=tf.int32),
        node("r1", "RandomUniform", "shape", T=tf.int32, dtype=tf.float32, seed=1, seed2=2),
        node("r2", "RandomUniform", "shape", T=tf.int32, dtype=tf.float32, seed=1, seed2=2),
        const("p", True, dtype=tf.bool),
        node("s1", "Switch", "x", "p"),
        node("s2", "Switch", "x", "p"),
        node("y", "AddN", "r1", "r2", "x2", "s1:1", "s2:1", N=5),
        inputs=["x", "x2"],
        outputs=["y"],
    )
    assert not run(g)
    assert merge_refusal(g, "r1") and merge_refusal(g, "s1") and merge_refusal(g, "x2")


def test_two_random_poolings_of_one_value_never_merge() -> None:
    """FractionalMaxPool is not stateful, yet unseeded it draws new pooling regions on every run: two of them
    are two independent draws (verification seeds them alike by name, so the graph still verifies)."""

    def body() -> None:
        value = constant(np.arange(64).reshape(1, 8, 8, 1))
        for name in ("a", "b"):
            pooled = tf.raw_ops.FractionalMaxPool(value=value, pooling_ratio=[1.0, 1.44, 1.73, 1.0])[0]
            tf.identity(pooled, name=name)

    source = build(body)
    g = optimized(source, CSE, inputs=[], outputs=["a", "b"])
    assert ops(g)["FractionalMaxPool"] == 2
    assert merge_refusal(g, "FractionalMaxPool") == "it draws random numbers"


def test_function_calls_never_merge_but_other_attrs_do_not_count_as_calls() -> None:
    calls = [node(name, "PartitionedCall", "x", T=None) for name in ("c1", "c2")]
    for call in calls:
        call.attr["Tin"].list.type.append(1)
        call.attr["Tout"].list.type.append(1)
        call.attr["f"].func.name = "f"
    twins = [node(name, "Neg", "x") for name in ("n1", "n2")]
    for twin in twins:
        twin.attr["_unused"].func.name = "f"  # not in Neg's OpDef: TensorFlow never calls it
    g = graph(placeholder("x"), *calls, *twins, node("y", "AddN", "c1", "c2", "n1", "n2", N=4), inputs=["x"])
    assert merge_refusal(g, "c1") == "it calls a function" and merge_refusal(g, "n1") is None
    assert run(g) and {"c1", "c2"} <= set(g) and len({"n1", "n2"} & set(g)) == 1


def test_a_graph_output_survives_and_two_outputs_both_stay() -> None:
    g = graph(
        placeholder("x"),
        node("first", "Neg", "x"),
        node("out", "Neg", "x"),
        node("out2", "Neg", "x"),
        node("t1", "Tanh", "first"),
        node("t2", "Tanh", "out2"),
        node("y", "AddV2", "t1", "t2"),
        inputs=["x"],
        outputs=["out", "out2", "y"],
    )
    assert run(g)
    names = lowered(g)
    assert "first" not in names and {"out", "out2"} <= set(names)
    assert names["y"] == ("AddV2", ["t1", "t1"]) and names["t1"] == ("Tanh", ["out"])


def test_control_consumers_wait_on_the_survivor() -> None:
    g = graph(
        placeholder("x"),
        node("a", "Neg", "x"),
        node("b", "Neg", "x"),
        node("y", "Tanh", "a", "^b"),
        inputs=["x"],
        outputs=["y"],
    )
    assert run(g)
    assert lowered(g)["y"] == ("Tanh", ["a", "^a"])


def test_ref_variable_reads_never_merge() -> None:
    g = graph(
        node("v", "VariableV2", T=None, dtype=tf.float32, shape=(2,)),
        node("r1", "Identity", "v"),
        node("r2", "Identity", "v"),
        node("y", "AddV2", "r1", "r2"),
        outputs=["y"],
    )
    assert merge_refusal(g, "r1") is not None
    assert not run(g)


def test_duplicated_subgraphs_in_a_while_loop_merge_and_still_run() -> None:
    def body() -> None:
        x = tf.compat.v1.placeholder(tf.float32, [2], name="x")

        def step(i: object, value: object) -> list[object]:
            scaled = tf.raw_ops.Mul(x=value, y=tf.constant(0.5)) + tf.raw_ops.Mul(x=value, y=tf.constant(0.5))
            return [i + 1, scaled]  # type: ignore[operator]

        with tf.compat.v1.variable_scope("loop"):
            was_v2 = tf.compat.v1.control_flow_v2_enabled()
            tf.compat.v1.disable_control_flow_v2()
            try:
                _, result = tf.compat.v1.while_loop(lambda i, _: i < 3, step, [tf.constant(0), x])
            finally:
                if was_v2:
                    tf.compat.v1.enable_control_flow_v2()
        tf.identity(result, name="y")

    graph_def = build(body)
    g = optimized(graph_def, CSE, inputs=["x"], outputs=["y"])
    assert ops(g)["Mul"] == 1 and ops(g)["Enter"] == ops(lift(graph_def, ["x"], ["y"]))["Enter"]


def test_merging_is_linear_and_reaches_its_fixed_point_in_one_run() -> None:
    # 3000 copies of one chain of three ops: a pairwise algorithm would take seconds, a fixed point many runs.
    nodes = [placeholder("x")]
    for copy in range(3000):
        nodes += [
            const(f"c{copy}", [2.0, 3.0]),
            node(f"m{copy}", "Mul", "x", f"c{copy}"),
            node(f"t{copy}", "Tanh", f"m{copy}"),
        ]
    nodes.append(node("y", "AddN", *(f"t{copy}" for copy in range(3000)), N=3000))
    g = graph(*nodes, inputs=["x"], outputs=["y"])
    start = time.perf_counter()
    assert run(g)
    assert time.perf_counter() - start < 5.0
    assert len(g) == 5 and not run(g)


@pytest.mark.parametrize("dtype", [tf.float32, tf.string])
def test_merged_graph_computes_the_same(dtype: object) -> None:
    def body() -> None:
        if dtype == tf.string:
            x = tf.compat.v1.placeholder(tf.string, [2], name="x")
            tf.strings.join([tf.strings.join([x, tf.constant("a")]), tf.strings.join([x, tf.constant("a")])], name="y")
        else:
            x = tf.compat.v1.placeholder(tf.float32, [2], name="x")
            tf.raw_ops.Sub(x=tf.raw_ops.Exp(x=x), y=tf.raw_ops.Exp(x=x), name="y")

    graph_def = build(body)
    g = lift(graph_def, ["x"], ["y"])
    assert run(g)
    check_outputs(graph_def, g)
