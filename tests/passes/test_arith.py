"""`passes/arith.py`: each rule of the table where it applies and where it must not, outputs compared in TensorFlow."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from optimizer import PassContext, PassManager, Tensor, get_pass
from optimizer.tensor import to_numpy
from passes.arith import RULES, RULES_BY_OP, Arith, Rewriter
from tests.passes.build import const as const_node
from tests.passes.build import graph as graph_of
from tests.passes.build import node
from tests.passes.build import placeholder as placeholder_node
from tests.passes.runnable import build, constant, lift, ops, optimized, placeholder, tf

ARITH = "arith"
rng = np.random.default_rng(3)


def unchanged(body: Callable[[], Any], inputs: list[str], outputs: list[str]) -> None:
    graph_def = build(body)
    graph = lift(graph_def, inputs, outputs)
    report = PassManager(ARITH).run(graph)
    assert not report.changed and graph.to_graph_def() == graph_def


def test_registered_and_every_rule_says_what_it_does() -> None:
    assert get_pass(ARITH) is Arith
    for rule in RULES:
        assert rule.ops and "->" in rule.does
        for op in rule.ops:
            assert rule in RULES_BY_OP[op]


@pytest.mark.parametrize(
    "expression",
    [
        lambda x: tf.raw_ops.Mul(x=x, y=constant(np.ones(3))),
        lambda x: tf.raw_ops.Mul(x=constant(1.0), y=x),
        lambda x: tf.raw_ops.AddV2(x=x, y=constant(np.zeros((1, 3)))),
        lambda x: tf.raw_ops.Add(x=constant(0.0), y=x),
        lambda x: tf.raw_ops.Sub(x=x, y=constant(np.zeros(3))),
        lambda x: tf.raw_ops.RealDiv(x=x, y=constant(1.0)),
        lambda x: tf.raw_ops.Div(x=x, y=constant(np.ones((2, 1)))),
        lambda x: tf.raw_ops.BiasAdd(value=x, bias=constant(np.zeros(3))),
    ],
    ids=["x*1", "1*x", "x+0", "0+x", "x-0", "x/1", "x/ones", "bias-add-0"],
)
def test_identity_elements_go(expression: Callable[[Any], Any]) -> None:
    def body() -> None:
        tf.raw_ops.Tanh(x=expression(placeholder("x", [2, 3])), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert ops(graph) == {"Placeholder": 1, "Tanh": 1}


@pytest.mark.parametrize(
    "expression",
    [
        lambda x: tf.raw_ops.Mul(x=x, y=constant(np.ones((2, 2, 3)))),  # broadcasts x to [2, 2, 3]
        lambda x: tf.raw_ops.AddV2(x=x, y=constant(np.zeros((3, 1, 1)))),
        lambda x: tf.raw_ops.Sub(x=constant(0.0), y=x),  # -x, not x
        lambda x: tf.raw_ops.RealDiv(x=constant(1.0), y=x),  # 1/x
        lambda x: tf.raw_ops.Mul(x=x, y=constant(np.array([1.0, 1.0, 2.0]))),
    ],
    ids=["ones-broadcast-larger", "zeros-broadcast-larger", "0-x", "1/x", "not-all-ones"],
)
def test_identity_elements_stay_where_they_change_the_value_or_shape(expression: Callable[[Any], Any]) -> None:
    unchanged(lambda: tf.identity(expression(placeholder("x", [2, 3])), name="y"), ["x"], ["y"])


def test_x_times_ones_needs_a_known_shape() -> None:
    # x of unknown rank: ones of shape [3] could broadcast it larger; a scalar one could not.
    unchanged(lambda: tf.raw_ops.Mul(x=placeholder("x", None), y=constant(np.ones(3)), name="y"), ["x"], ["y"])

    def scalar() -> None:
        tf.raw_ops.Tanh(x=tf.raw_ops.Mul(x=placeholder("x", None), y=constant(1.0)), name="y")

    graph = lift(build(scalar), ["x"], ["y"])
    assert PassManager(ARITH).run(graph).changed and "Mul" not in ops(graph)


def test_dynamic_dimension_against_a_one_broadcasts_safely() -> None:
    def body() -> None:
        x = placeholder("x", [None, 3])
        tf.raw_ops.Tanh(x=tf.raw_ops.Mul(x=x, y=constant(np.ones((1, 3)))), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert "Mul" not in ops(graph)


def test_an_output_that_becomes_an_identity_keeps_its_name() -> None:
    def body() -> None:
        tf.raw_ops.Mul(x=placeholder("x", [2, 3]), y=constant(1.0), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert graph.op("y") == "Identity" and graph.inputs_of("y")[0].node == "x"


def test_control_inputs_of_a_dropped_constant_are_kept() -> None:
    def body() -> None:
        x = placeholder("x", [2, 3])
        gate = tf.raw_ops.NoOp(name="gate")
        with tf.control_dependencies([gate]):
            one = constant(1.0, name="one")
        tf.raw_ops.Tanh(x=tf.raw_ops.Mul(x=x, y=one, name="times"), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert graph.op("times") == "Identity" and graph.control_inputs_of("times") == ["gate"]


@pytest.mark.parametrize("op", ["Neg", "LogicalNot"])
def test_involutions_cancel(op: str) -> None:
    dtype = tf.bool if op == "LogicalNot" else tf.float32
    apply = getattr(tf.raw_ops, op)

    def body() -> None:
        x = placeholder("x", [2, 3], dtype)
        key = "x"
        once = apply(**{key: x})
        twice = apply(**{key: once})
        thrice = apply(**{key: twice}, name="y")
        del thrice

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert ops(graph)[op] == 1  # three negations are one


def test_multiply_chain_becomes_one_multiply() -> None:
    def body() -> None:
        x = placeholder("x", [2, 3])
        once = tf.raw_ops.Mul(x=x, y=constant(rng.normal(size=3)))
        tf.raw_ops.Mul(x=constant(rng.normal(size=(1, 3))), y=once, name="y")
        grown = tf.raw_ops.Mul(x=x, y=constant(rng.normal(size=3)))
        tf.raw_ops.Mul(x=grown, y=constant(rng.normal(size=(2, 1))), name="z")  # c1*c2 would be larger: stays

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y", "z"])
    assert ops(graph) == {"Placeholder": 1, "Const": 3, "Mul": 3}
    assert to_numpy(graph.node(graph.inputs_of("y")[1].node).attrs["value"].tensor).shape == (1, 3)


@pytest.mark.parametrize(
    ("inner", "outer", "op"),
    [
        (lambda x, c: tf.raw_ops.AddV2(x=x, y=c), lambda v, c: tf.raw_ops.Add(x=c, y=v), "AddV2"),
        (lambda x, c: tf.raw_ops.Sub(x=x, y=c), lambda v, c: tf.raw_ops.AddV2(x=v, y=c), "AddV2"),
        (lambda x, c: tf.raw_ops.Sub(x=c, y=x), lambda v, c: tf.raw_ops.AddV2(x=v, y=c), "Sub"),
        (lambda x, c: tf.raw_ops.Sub(x=c, y=x), lambda v, c: tf.raw_ops.Sub(x=c, y=v), "AddV2"),
    ],
    ids=["(x+c)+c", "(x-c)+c", "(c-x)+c", "c-(c-x)"],
)
def test_add_chains_become_one_add_or_sub(inner: Callable[..., Any], outer: Callable[..., Any], op: str) -> None:
    def body() -> None:
        x = placeholder("x", [2, 3])
        tf.identity(outer(inner(x, constant(rng.normal(size=3))), constant(rng.normal(size=3))), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert {key: value for key, value in ops(graph).items() if key in ("Add", "AddV2", "Sub")} == {op: 1}


def test_integer_chains_fold_too_and_unsigned_sums_are_left_alone() -> None:
    def body() -> None:
        x = placeholder("x", [3], tf.int32)
        tf.raw_ops.AddV2(x=tf.raw_ops.AddV2(x=x, y=tf.constant([1, 2, 3])), y=tf.constant(5), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert ops(graph)["AddV2"] == 1

    def unsigned() -> None:
        x = placeholder("x", [3], tf.uint8)
        inner = tf.raw_ops.Sub(x=x, y=tf.constant([1, 2, 3], tf.uint8))
        tf.raw_ops.AddV2(x=inner, y=tf.constant(5, tf.uint8), name="y")

    unchanged(unsigned, ["x"], ["y"])


def test_equal_chains_share_one_new_constant() -> None:
    def body() -> None:
        sources = {"x": placeholder("x", [2]), "w": placeholder("w", [2])}
        for name, source, outer in (("y", "x", 3.0), ("z", "w", 3.0), ("v", "x", 4.0)):
            tf.raw_ops.Mul(x=tf.raw_ops.Mul(x=sources[source], y=constant(2.0)), y=constant(outer), name=name)

    graph = optimized(build(body), ARITH, inputs=["x", "w"], outputs=["y", "z", "v"])
    assert ops(graph) == {"Placeholder": 2, "Const": 2, "Mul": 3}  # 2*3 made once, for y and z; 2*4 for v
    assert graph.inputs_of("y")[1] == graph.inputs_of("z")[1] != graph.inputs_of("v")[1]


def test_chain_through_a_shared_inner_node_stays() -> None:
    def body() -> None:
        inner = tf.raw_ops.Mul(x=placeholder("x", [2, 3]), y=constant(2.0), name="inner")
        tf.raw_ops.Mul(x=inner, y=constant(3.0), name="y")
        tf.raw_ops.Tanh(x=inner, name="z")

    unchanged(body, ["x"], ["y", "z"])


def conv(x: Any, weights: Any) -> Any:
    return tf.raw_ops.Conv2D(input=x, filter=weights, strides=[1, 1, 1, 1], padding="VALID")


def test_scale_and_offset_after_a_conv_move_into_its_weights_and_bias() -> None:
    def body() -> None:
        image = conv(placeholder("x", [1, 4, 4, 2]), constant(rng.normal(size=(2, 2, 2, 3))))
        scaled = tf.raw_ops.Mul(x=constant(rng.uniform(0.5, 2, (1, 1, 1, 3))), y=image)
        tf.raw_ops.Relu(features=tf.raw_ops.Add(x=scaled, y=constant(rng.normal(size=3))), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert ops(graph) == {"Placeholder": 1, "Const": 2, "Conv2D": 1, "BiasAdd": 1, "Relu": 1}


def test_an_add_of_a_bias_vector_becomes_a_bias_add_of_the_same_constant() -> None:
    def body() -> None:
        dense = tf.raw_ops.MatMul(a=placeholder("x", [2, 3]), b=constant(rng.normal(size=(3, 4))))
        tf.raw_ops.AddV2(x=dense, y=constant(rng.normal(size=4), name="bias"), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert graph.op("y") == "BiasAdd" and graph.inputs_of("y")[1].node == "bias"


def test_a_scale_after_a_conv_with_a_shared_weight_stays() -> None:
    def body() -> None:
        x = placeholder("x", [1, 4, 4, 2])
        weights = constant(rng.normal(size=(2, 2, 2, 3)))
        tf.raw_ops.Mul(x=conv(x, weights), y=constant(rng.normal(size=3)), name="y")
        tf.identity(conv(x, weights), name="z")

    unchanged(body, ["x"], ["y", "z"])


def test_reshape_of_reshape_reads_the_first_input() -> None:
    def body() -> None:
        x = placeholder("x", [2, 3, 4])
        flat = tf.raw_ops.Reshape(tensor=x, shape=[6, 4])
        tf.raw_ops.Reshape(tensor=tf.raw_ops.ExpandDims(input=flat, axis=0), shape=[4, 6], name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert ops(graph) == {"Placeholder": 1, "Const": 1, "Reshape": 1}


@pytest.mark.parametrize(
    "expression",
    [
        lambda x: tf.raw_ops.Reshape(tensor=x, shape=[-1, 3]),
        lambda x: tf.raw_ops.Squeeze(input=tf.raw_ops.ExpandDims(input=x, axis=1), axis=[1]),
        lambda x: tf.raw_ops.ExpandDims(input=tf.raw_ops.Squeeze(input=x[:1]), axis=0),
        lambda x: tf.raw_ops.Squeeze(input=x[:, :2]),
    ],
    ids=["reshape-to-own-shape", "expand-then-squeeze", "squeeze-then-expand", "squeeze-nothing"],
)
def test_reshapes_back_to_the_input_shape_go(expression: Callable[[Any], Any]) -> None:
    def body() -> None:
        tf.raw_ops.Tanh(x=expression(placeholder("x", [2, 3])), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert {"Reshape", "Squeeze", "ExpandDims"}.isdisjoint(ops(graph))


def test_reshapes_of_a_dynamic_shape_go_only_when_provably_the_same() -> None:
    def body() -> None:
        x = placeholder("x", [None, 3])
        tf.raw_ops.Tanh(x=tf.raw_ops.Reshape(tensor=x, shape=[-1, 3]), name="y")  # the -1 is the dynamic dim
        tf.raw_ops.Squeeze(input=x, name="z")  # the dynamic dimension may be 1: stays
        tf.raw_ops.Reshape(tensor=x, shape=[3, -1], name="w")  # a real reshape when the batch is not 3

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y", "z", "w"])
    assert graph.inputs_of("y")[0].node == "x" and graph.op("z") == "Squeeze" and graph.op("w") == "Reshape"


def test_reshape_to_its_own_static_shape_goes_and_a_real_reshape_stays() -> None:
    def body() -> None:
        x = placeholder("x", [2, 3])
        tf.raw_ops.Tanh(x=tf.raw_ops.Reshape(tensor=x, shape=[2, 3]), name="y")
        tf.raw_ops.Tanh(x=tf.raw_ops.Reshape(tensor=x, shape=[3, 2]), name="z")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y", "z"])
    assert ops(graph)["Reshape"] == 1


def test_transposes_that_cancel_go_and_others_compose() -> None:
    def body() -> None:
        x = placeholder("x", [2, 3, 4, 5])
        nchw = tf.raw_ops.Transpose(x=x, perm=[0, 3, 1, 2])
        tf.raw_ops.Tanh(x=tf.raw_ops.Transpose(x=nchw, perm=[0, 2, 3, 1]), name="y")
        other = tf.raw_ops.Transpose(x=x, perm=[1, 0, 2, 3])
        tf.raw_ops.Transpose(x=other, perm=[0, 1, 3, 2], name="z")
        tf.raw_ops.Transpose(x=x, perm=[0, 1, 2, 3], name="w")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y", "z", "w"])
    assert ops(graph)["Transpose"] == 1 and graph.op("w") == "Identity"
    perm = to_numpy(graph.node(graph.inputs_of("z")[1].node).attrs["value"].tensor)
    assert perm.tolist() == [1, 0, 3, 2]


def test_cast_to_its_own_type_goes_and_a_real_cast_stays() -> None:
    def body() -> None:
        x = placeholder("x", [2, 3])
        tf.raw_ops.Tanh(x=tf.raw_ops.Cast(x=x, DstT=tf.float32), name="y")
        tf.raw_ops.Cast(x=x, DstT=tf.int32, name="z")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y", "z"])
    assert ops(graph)["Cast"] == 1


@pytest.mark.parametrize(
    ("expression", "op"),
    [
        (lambda x: tf.raw_ops.Pad(input=x, paddings=[[0, 0], [0, 0]]), "Pad"),
        (lambda x: tf.raw_ops.MirrorPad(input=x, paddings=[[0, 0], [0, 0]], mode="REFLECT"), "MirrorPad"),
        (lambda x: tf.raw_ops.Slice(input=x, begin=[0, 0], size=[-1, 3]), "Slice"),
        (lambda x: tf.raw_ops.Tile(input=x, multiples=[1, 1]), "Tile"),
        (lambda x: tf.raw_ops.AddN(inputs=[x]), "AddN"),
        (lambda x: tf.raw_ops.BroadcastTo(input=x, shape=[2, 3]), "BroadcastTo"),
    ],
    ids=["pad", "mirror-pad", "slice", "tile", "add-n", "broadcast-to"],
)
def test_no_op_shape_ops_go(expression: Callable[[Any], Any], op: str) -> None:
    def body() -> None:
        tf.raw_ops.Tanh(x=expression(placeholder("x", [2, 3])), name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert op not in ops(graph)


@pytest.mark.parametrize(
    "expression",
    [
        lambda x: tf.raw_ops.Pad(input=x, paddings=[[0, 1], [0, 0]]),
        lambda x: tf.raw_ops.Slice(input=x, begin=[0, 0], size=[1, 3]),
        lambda x: tf.raw_ops.Slice(input=x, begin=[0, 1], size=[-1, -1]),
        lambda x: tf.raw_ops.Tile(input=x, multiples=[2, 1]),
        lambda x: tf.raw_ops.ConcatV2(values=[x, x], axis=1),
        lambda x: tf.raw_ops.BroadcastTo(input=x, shape=[2, 2, 3]),
    ],
    ids=["pad", "slice-part", "slice-offset", "tile", "concat-two", "broadcast-larger"],
)
def test_shape_ops_that_do_something_stay(expression: Callable[[Any], Any]) -> None:
    unchanged(lambda: tf.identity(expression(placeholder("x", [2, 3])), name="y"), ["x"], ["y"])


def test_whole_slice_of_a_dynamic_dimension_needs_minus_one() -> None:
    unchanged(
        lambda: tf.raw_ops.Slice(input=placeholder("x", [None, 3]), begin=[0, 0], size=[2, 3], name="y"), ["x"], ["y"]
    )


def test_all_constant_expressions_are_left_to_fold() -> None:
    unchanged(lambda: tf.raw_ops.Mul(x=constant(np.ones(3)), y=constant(np.arange(3.0)), name="y"), [], ["y"])


def test_concat_of_one_input_goes() -> None:
    # TensorFlow's registry asks for two inputs, but converters write one: a structural test, not a runnable one.
    graph = graph_of(
        placeholder_node("x", shape=(2, 3)),
        const_node("axis", 0, dtype=tf.int32),
        node("cat", "ConcatV2", "x", "axis", N=1, Tidx=tf.int32),
        node("y", "Tanh", "cat"),
        inputs=["x"],
        outputs=["y"],
    )
    assert PassManager(ARITH).run(graph).changed
    assert ops(graph) == {"Placeholder": 1, "Tanh": 1} and graph.inputs_of("y")[0].node == "x"


def test_a_fed_node_is_never_skipped() -> None:
    def body() -> None:
        inner = tf.raw_ops.Neg(x=placeholder("x", [2, 3]), name="inner")
        tf.raw_ops.Neg(x=inner, name="y")
        fed_reshape = tf.raw_ops.Reshape(tensor=inner, shape=[3, 2], name="fed_reshape")
        tf.raw_ops.Reshape(tensor=fed_reshape, shape=[6], name="z")

    graph_def = build(body)
    graph = lift(graph_def, ["x", "inner", "fed_reshape"], ["y", "z"])
    assert not PassManager(ARITH).run(graph).changed


def test_element_wise_ops_hoist_out_of_a_concat_and_nested_concats_flatten() -> None:
    def body() -> None:
        x = placeholder("x", [2, 3])
        parts = [tf.raw_ops.Relu(features=tf.raw_ops.Mul(x=x, y=constant(scale))) for scale in (1.5, -2.0, 0.5)]
        inner = tf.raw_ops.ConcatV2(values=parts[:2], axis=1, name="inner")
        tf.raw_ops.ConcatV2(values=[tf.raw_ops.Relu(features=x), inner, parts[2]], axis=1, name="y")

    graph = optimized(build(body), ARITH, inputs=["x"], outputs=["y"])
    assert graph.op("y") == "Relu" and ops(graph)["Relu"] == 1 and ops(graph)["ConcatV2"] == 1
    (concat,) = [node for node in graph.nodes() if node.op == "ConcatV2"]
    assert concat.attrs["N"].i == 4


@pytest.mark.parametrize(
    "parts",
    [
        lambda x: [tf.raw_ops.Relu(features=x), tf.raw_ops.Tanh(x=x)],  # different ops
        lambda x: [tf.raw_ops.LeakyRelu(features=x, alpha=0.1), tf.raw_ops.LeakyRelu(features=x, alpha=0.2)],
        lambda x: [tf.raw_ops.Relu(features=x, name="shared"), tf.raw_ops.Relu(features=x)],
    ],
    ids=["different-ops", "different-attrs", "read-elsewhere"],
)
def test_hoisting_needs_the_same_op_and_attrs_read_only_by_the_concat(parts: Callable[[Any], Any]) -> None:
    def body() -> None:
        x = placeholder("x", [2, 3])
        tf.raw_ops.ConcatV2(values=parts(x), axis=0, name="y")
        if "shared" in [op.name for op in tf.compat.v1.get_default_graph().get_operations()]:
            tf.identity(tf.compat.v1.get_default_graph().get_tensor_by_name("shared:0"), name="z")

    graph_def = build(body)
    outputs = ["y", "z"] if any(node.name == "z" for node in graph_def.node) else ["y"]
    unchanged(lambda: tf.graph_util.import_graph_def(graph_def, name=""), ["x"], outputs)


def test_nested_concats_along_another_axis_stay() -> None:
    def body() -> None:
        x = placeholder("x", [2, 3])
        inner = tf.raw_ops.ConcatV2(values=[x, x], axis=0)
        tf.raw_ops.ConcatV2(values=[inner, tf.raw_ops.ConcatV2(values=[x, x], axis=0)], axis=1, name="y")

    unchanged(body, ["x"], ["y"])


def test_a_constant_changed_in_place_is_decoded_again() -> None:
    g = graph_of(placeholder_node("x"), const_node("c", [1.0, 1.0]), node("m", "Mul", "x", "c"))
    rw = Rewriter(g, PassContext())
    first = rw.constant(Tensor("c"))
    assert first is not None and first.tolist() == [1.0, 1.0]
    assert rw.constant(Tensor("c")) is first  # decoded once
    g.set_attr("c", "value", const_node("c", [2.0, 3.0]).attr["value"])
    second = rw.constant(Tensor("c"))
    assert second is not None and second.tolist() == [2.0, 3.0]
    g.remove("m")
    g.remove("c")
    g.add_node_def(const_node("c", [4.0, 4.0]))  # the same name, a new proto
    third = rw.constant(Tensor("c"))
    assert third is not None and third.tolist() == [4.0, 4.0]
