"""Unit tests of `passes/fold.py`, one group per clause of its contract: folding and names, control edges, the
guards (size, safety, control inputs), Switch/Merge and If/Case with constant conditions, shapes, dtypes."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import optimizer
from optimizer import Graph, PassContext, PassManager, RunReport, Tensor, get_pass
from optimizer import evaluate as evaluation
from optimizer.cli import main
from optimizer.graph_io import read_graph_def
from optimizer.protos import GraphDef
from optimizer.tensor import to_numpy
from optimizer.tf_import import LazyImport
from optimizer.verify import verify
from passes import fold as fold_module
from passes.fold import Fold
from tests.passes.build import const, graph, lowered, node, placeholder

tf = pytest.importorskip("tensorflow")
v1 = tf.compat.v1


@contextlib.contextmanager
def control_flow_v1() -> Iterator[None]:
    was_v2 = v1.control_flow_v2_enabled()
    v1.disable_control_flow_v2()
    try:
        yield
    finally:
        if was_v2:
            v1.enable_control_flow_v2()


def tf_graph(build: Callable[[], None], inputs: list[str], outputs: list[str], *, cf_v1: bool = False) -> Graph:
    """A Graph of what `build` makes with TensorFlow (TF1 control flow with `cf_v1`)."""
    made = tf.Graph()
    with made.as_default(), control_flow_v1() if cf_v1 else contextlib.nullcontext():
        build()
    return Graph.from_graph_def(
        made.as_graph_def(), [Tensor.parse(name) for name in inputs], [Tensor.parse(name) for name in outputs]
    )


def run_fold(g: Graph, passes: str = "fold", *, max_rewrites: int | None = None) -> tuple[RunReport, GraphDef]:
    """Run `passes` over `g`; return the report and the graph as it was before, for comparing outputs."""
    before = g.to_graph_def()
    report = PassManager(passes, context=PassContext(max_rewrites=max_rewrites)).run(g)
    return report, before


def assert_same_outputs(before: GraphDef, g: Graph) -> None:
    for seed in (0, 1):
        result = verify(before, g.to_graph_def(), g.inputs, g.outputs, seed=seed)
        assert result.skipped is None, result.skipped
        assert result.passed, [check for check in result.outputs if not check.passed]


def ops(g: Graph) -> dict[str, str]:
    return {name: g.op(name) for name in g}


def value(g: Graph, name: str) -> np.ndarray:
    assert g.op(name) == "Const", (name, g.op(name))
    return to_numpy(g.node(name).attrs["value"].tensor)


def count_evaluations(monkeypatch: pytest.MonkeyPatch) -> list[list[Tensor]]:
    """Record the fetches of every evaluation the pass asks for."""
    calls: list[list[Tensor]] = []
    real = fold_module.evaluate

    def recording(g: Graph, fetches: Any, known: Any = None, imported: Any = None, **options: Any) -> Any:
        calls.append(list(fetches))
        return real(g, fetches, known, imported, **options)

    monkeypatch.setattr(fold_module, "evaluate", recording)
    return calls


# ----- the pass as a pass -----------------------------------------------------------------------------------------


def test_registry_name_and_option() -> None:
    assert get_pass("fold") is Fold and Fold.name == "fold"
    assert str(Fold()) == "fold" and str(Fold(max_bytes=1024)) == "fold{max-bytes=1024}"
    assert optimizer.Pipeline.parse("fold{max-bytes=1024}").passes == (Fold(max_bytes=1024),)


def chain() -> Graph:
    return graph(
        placeholder("x"),
        const("a", [1.0, 2.0]),
        const("b", [3.0, 4.0]),
        node("sum", "AddV2", "a", "b"),
        node("scaled", "Mul", "sum", "a"),
        node("y", "AddV2", "x", "scaled"),
        inputs=["x"],
        outputs=["y"],
    )


def test_a_constant_chain_folds_into_one_const_named_after_the_last_node() -> None:
    g = chain()
    report, before = run_fold(g)
    assert lowered(g) == {
        "x": ("Placeholder", []),
        "scaled": ("Const", []),
        "y": ("AddV2", ["x", "scaled"]),
    }
    assert value(g, "scaled").tolist() == [4.0, 12.0]
    assert report.records[0].changed
    assert_same_outputs(before, g)


def test_second_run_and_zero_budget_change_nothing() -> None:
    g = chain()
    run_fold(g)
    assert not run_fold(g)[0].changed
    untouched = chain()
    assert not run_fold(untouched, max_rewrites=0)[0].changed
    assert untouched.to_graph_def() == chain().to_graph_def()


def test_one_tensorflow_call_for_the_whole_frontier(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [placeholder("x"), const("a", [1.0, 2.0])]
    for index in range(30):
        nodes += [node(f"c{index}", "Mul" if index % 2 else "Neg", *(["a", "a"] if index % 2 else ["a"]))]
        nodes += [node(f"y{index}", "AddV2", "x", f"c{index}")]
    g = graph(*nodes, inputs=["x"], outputs=[f"y{index}" for index in range(30)])
    calls = count_evaluations(monkeypatch)
    run_fold(g)
    assert len(calls) == 1 and len(calls[0]) == 30


def test_the_frontier_is_imported_into_tensorflow_once_for_shapes_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shape inference and evaluation both run in the child, on the same frontier bytes: the child imports them
    once (`_import_serialized` keeps its last import) and this process never imports the frontier."""
    nodes = [placeholder("x"), const("a", [1.0, 2.0])]
    for index in range(10):
        nodes += [node(f"e{index}", "Exp", "a"), node(f"y{index}", "AddV2", "x", f"e{index}")]
    g = graph(*nodes, inputs=["x"], outputs=[f"y{index}" for index in range(10)])
    sent: list[tuple[str, bytes]] = []
    real_call = evaluation.sandbox.call

    def recording(stage: str, function: Any, data: bytes, *rest: Any, **options: Any) -> Any:
        sent.append((function.__name__, data))
        return real_call(stage, function, data, *rest, **options)

    monkeypatch.setattr(evaluation.sandbox, "call", recording)
    monkeypatch.setattr(LazyImport, "__init__", lambda *_: pytest.fail("the frontier was imported here"))
    _, before = run_fold(g)
    assert [name for name, _ in sent] == ["_static_serialized", "_run_serialized"] and sent[0][1] == sent[1][1]
    assert len(GraphDef.FromString(sent[0][1]).node) == 11
    assert all(ops(g)[f"e{index}"] == "Const" for index in range(10))
    monkeypatch.undo()
    assert_same_outputs(before, g)
    data = sent[0][1]
    assert evaluation._import_serialized(data) is evaluation._import_serialized(data)


def test_a_graph_output_folds_in_place() -> None:
    g = graph(const("a", [2.0]), node("y", "Square", "a"), node("z", "Neg", "y"), outputs=["y", "z"])
    _, before = run_fold(g)
    assert ops(g) == {"y": "Const", "z": "Const"}
    assert value(g, "y").tolist() == [4.0] and value(g, "z").tolist() == [-4.0]
    assert_same_outputs(before, g)


def test_multi_output_nodes_fold_only_the_used_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    g = graph(
        placeholder("x", shape=(2,)),
        const("axis", 0, dtype=tf.int32),
        const("v", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        node("split", "Split", "axis", "v", num_split=3),
        node("y", "AddV2", "x", "split:1"),
        node("z", "AddV2", "x", "split:2"),
        inputs=["x"],
        outputs=["y", "z"],
    )
    calls = count_evaluations(monkeypatch)
    _, before = run_fold(g)
    assert calls == [[Tensor("split", 1), Tensor("split", 2)]]
    assert lowered(g) == {
        "x": ("Placeholder", []),
        "y": ("AddV2", ["x", "split/port_1"]),
        "z": ("AddV2", ["x", "split/port_2"]),
        "split/port_1": ("Const", []),
        "split/port_2": ("Const", []),
    }
    assert value(g, "split/port_2").tolist() == [5.0, 6.0]
    assert_same_outputs(before, g)


def test_a_multi_output_graph_output_keeps_its_node() -> None:
    g = graph(
        const("axis", 0, dtype=tf.int32),
        const("v", [1.0, 2.0]),
        node("split", "Split", "axis", "v", num_split=2),
        node("neg", "Neg", "split:1"),
        outputs=["split:0", "neg"],
    )
    _, before = run_fold(g)
    assert g.op("split") == "Split" and g.op("neg") == "Const"
    assert_same_outputs(before, g)


@pytest.mark.parametrize(
    ("dtype", "values"),
    [
        (tf.float16, [1.5, -2.25]),
        (tf.bfloat16, [1.5, -2.25]),
        (tf.int8, [-3, 7]),
        (tf.uint8, [3, 250]),
        (tf.int64, [2**40, -1]),
        (tf.bool, [True, False]),
        (tf.complex64, [1 + 2j, -1j]),
        (tf.complex128, [1 + 2j, -1j]),
        (tf.string, [b"ab", b""]),
    ],
    ids=lambda item: getattr(item, "name", ""),
)
def test_dtypes_are_preserved(dtype: Any, values: list[Any]) -> None:
    g = graph(
        const("a", values, dtype=dtype),
        node("copy", "Reverse", "a", "dims", T=dtype),
        const("dims", [True], dtype=tf.bool),
        outputs=["copy"],
    )
    run_fold(g)
    folded = g.node("copy")
    assert folded.op == "Const" and folded.attrs["dtype"].type == dtype.as_datatype_enum
    expected = np.array(values[::-1], dtype=object if dtype == tf.string else dtype.as_numpy_dtype)
    assert np.array_equal(value(g, "copy"), expected)


def test_all_equal_results_are_stored_compactly() -> None:
    g = graph(
        const("dims", [256, 256], dtype=tf.int32),
        const("one", 1.0),
        node("ones", "Fill", "dims", "one", index_type=tf.int32),
        outputs=["ones"],
    )
    run_fold(g)
    proto = g.node("ones").attrs["value"].tensor
    assert proto.ByteSize() < 64 and to_numpy(proto).shape == (256, 256)


# ----- control edges ----------------------------------------------------------------------------------------------


def test_a_non_constant_control_input_blocks_folding() -> None:
    g = graph(
        placeholder("x"),
        node("side", "Neg", "x"),
        const("a", [1.0, 2.0]),
        node("n", "Neg", "a", "^side"),
        node("y", "AddV2", "x", "n"),
        inputs=["x"],
        outputs=["y"],
    )
    assert not run_fold(g)[0].changed
    assert g.op("n") == "Neg"


def test_constant_control_inputs_are_dropped_and_conditions_inherited() -> None:
    # `a` sits in a branch (it waits for `pivot`); `b` is a plain constant; `n` also waits for `c`.
    g = graph(
        placeholder("x"),
        node("pivot", "Identity", "x"),
        const("a", [1.0, 2.0], "^pivot"),
        const("b", [3.0, 4.0]),
        const("c", [0.0]),
        node("n", "AddV2", "a", "b", "^c"),
        node("y", "AddV2", "x", "n"),
        node("w", "Neg", "x", "^b"),
        inputs=["x"],
        outputs=["y", "w"],
    )
    _, before = run_fold(g)
    assert lowered(g)["n"] == ("Const", ["^pivot"])
    assert lowered(g)["w"] == ("Neg", ["x"])  # a control edge from a plain constant carries nothing
    assert "c" not in g and "b" not in g
    assert_same_outputs(before, g)


def test_control_consumers_of_a_folded_node_keep_working() -> None:
    g = graph(
        placeholder("x"),
        node("pivot", "Identity", "x"),
        const("a", [1.0, 2.0], "^pivot"),
        node("n", "Neg", "a"),
        node("after", "Identity", "x", "^n"),
        node("y", "AddV2", "after", "n"),
        inputs=["x"],
        outputs=["y"],
    )
    _, before = run_fold(g)
    assert lowered(g)["after"] == ("Identity", ["x", "^n"]) and lowered(g)["n"] == ("Const", ["^pivot"])
    assert_same_outputs(before, g)


def test_a_fed_constant_is_not_constant() -> None:
    g = graph(const("c", [1.0, 2.0]), node("n", "Neg", "c"), node("y", "Square", "n"), inputs=["c"], outputs=["y"])
    assert not run_fold(g)[0].changed


# ----- guards -----------------------------------------------------------------------------------------------------


def test_a_fill_to_one_gib_is_neither_folded_nor_evaluated(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    g = graph(
        placeholder("x", shape=(1,)),
        const("dims", [256, 1024, 1024], dtype=tf.int32),
        const("one", 1.0),
        node("big", "Fill", "dims", "one", index_type=tf.int32),
        const("axes", [0, 1, 2], dtype=tf.int32),
        node("total", "Sum", "big", "axes", Tidx=tf.int32),
        node("y", "AddV2", "x", "total"),
        inputs=["x"],
        outputs=["y"],
    )
    calls = count_evaluations(monkeypatch)
    start = time.perf_counter()
    with caplog.at_level(logging.WARNING):
        report, _ = run_fold(g)
    assert time.perf_counter() - start < 5.0
    assert calls == [] and not report.changed  # nothing evaluated: no 1 GiB buffer was ever made
    assert ops(g)["big"] == "Fill" and ops(g)["total"] == "Sum"
    assert "fold{max-bytes=1073741824}" in caplog.text


def test_the_size_guard_holds_when_the_whole_graph_does_not_import(monkeypatch: pytest.MonkeyPatch) -> None:
    # An op TensorFlow does not know elsewhere in the graph must not blind the guard.
    g = graph(
        placeholder("x", shape=(1,)),
        node("custom", "MyCustomOp", "x", T=None),
        const("dims", [256, 1024, 1024], dtype=tf.int32),
        const("one", 1.0),
        node("big", "Fill", "dims", "one", index_type=tf.int32),
        node("y", "AddV2", "custom", "big"),
        inputs=["x"],
        outputs=["y"],
    )
    calls = count_evaluations(monkeypatch)
    assert not run_fold(g)[0].changed and calls == [] and g.op("big") == "Fill"


def test_max_bytes_sets_the_size_guard(caplog: pytest.LogCaptureFixture) -> None:
    def tiled() -> Graph:
        return graph(
            const("v", np.arange(16, dtype=np.float32)),
            const("multiples", [64], dtype=tf.int32),
            node("tiled", "Tile", "v", "multiples", Tmultiples=tf.int32),
            outputs=["tiled"],
        )

    small = tiled()
    with caplog.at_level(logging.WARNING):
        run_fold(small, "fold{max-bytes=1024}")
    assert small.op("tiled") == "Tile" and "fold{max-bytes=4096}" in caplog.text
    large = tiled()
    run_fold(large, "fold{max-bytes=4096}")
    assert large.op("tiled") == "Const"
    # an output no larger than its inputs always folds
    shrink = graph(const("v", np.ones(4096, np.float32)), node("n", "Neg", "v"), outputs=["n"])
    run_fold(shrink, "fold{max-bytes=16}")
    assert shrink.op("n") == "Const"


def test_read_file_is_never_folded_nor_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOP-SECRET-BYTES-0123456789")
    g = graph(
        const("path", str(secret).encode(), dtype=tf.string),
        node("read", "ReadFile", "path", T=None),
        node("length", "StringLength", "read", T=None),
        outputs=["length"],
    )
    ran: list[GraphDef] = []
    real = evaluation.run_frontier

    def recording(graph_def: GraphDef, fetches: Any, *rest: Any) -> Any:
        ran.append(graph_def)
        return real(graph_def, fetches, *rest)

    monkeypatch.setattr(evaluation, "run_frontier", recording)
    assert not run_fold(g)[0].changed
    assert ops(g) == {"path": "Const", "read": "ReadFile", "length": "StringLength"}
    assert ran == [] and b"TOP-SECRET" not in g.to_graph_def().SerializeToString()


@pytest.mark.parametrize(
    "unsafe",
    [
        node("guarded", "RandomUniform", "shape", T=tf.int32, dtype=tf.float32, seed=1, seed2=2),
        node("guarded", "StatelessRandomUniform", "shape", "seed", T=tf.int32, Tseed=tf.int32, dtype=tf.float32),
        node("guarded", "CheckNumerics", "values", message="stateful"),
        node("guarded", "FakeQuantWithMinMaxArgs", "values", T=None),
        node("guarded", "Print", "values", "values", T=tf.float32, U=[tf.float32]),
    ],
    ids=lambda unsafe: unsafe.op,
)
def test_unsafe_ops_are_not_folded(unsafe: Any) -> None:
    g = graph(
        const("shape", [2], dtype=tf.int32),
        const("seed", [1, 2], dtype=tf.int32),
        const("values", [0.25, 0.5]),
        unsafe,
        node("y", "Neg", "guarded"),
        outputs=["y"],
    )
    assert not run_fold(g)[0].changed
    assert g.op("guarded") == unsafe.op and g.op("y") == "Neg"


def test_a_node_tensorflow_cannot_evaluate_is_kept(caplog: pytest.LogCaptureFixture) -> None:
    g = graph(
        const("text", [b"12", b"abc"], dtype=tf.string),
        node("number", "StringToNumber", "text", T=None, out_type=tf.float32),
        const("a", [1.0]),
        node("fine", "Neg", "a"),
        outputs=["number", "fine"],
    )
    with caplog.at_level(logging.DEBUG):
        run_fold(g)
    assert g.op("number") == "StringToNumber" and g.op("fine") == "Const"
    assert "could not correctly convert string: abc" in caplog.text


# ----- Switch and Merge with a constant predicate -------------------------------------------------------------------


def v1_cond(predicate: bool) -> Callable[[], None]:
    def build() -> None:
        x = v1.placeholder(tf.float32, [2], name="x")
        p = tf.constant(predicate, name="p")
        y = v1.cond(p, lambda: x * 2.0 + 1.0, lambda: tf.shape(x, out_type=tf.float32) - x, name="c")
        tf.identity(y, name="y")

    return build


@pytest.mark.parametrize("predicate", [True, False])
def test_a_constant_switch_keeps_the_live_branch_only(predicate: bool) -> None:
    g = tf_graph(v1_cond(predicate), ["x"], ["y"], cf_v1=True)
    _, before = run_fold(g, "fold,identity,prune")
    remaining = set(ops(g).values())
    assert not remaining & {"Switch", "Merge", "Identity"} - {"Identity"}
    assert ("Mul" in remaining) == predicate and ("Sub" in remaining) != predicate
    assert "Shape" not in remaining  # the false branch's shape is materialized or gone
    assert_same_outputs(before, g)


def test_a_merge_value_index_becomes_a_constant() -> None:
    g = graph(
        placeholder("x"),
        const("p", False, dtype=tf.bool),
        node("sw", "Switch", "x", "p"),
        node("f", "Neg", "sw:0"),
        node("t", "Square", "sw:1"),
        node("m", "Merge", "t", "f", N=2),
        node("y", "Identity", "m"),
        node("which", "Identity", "m:1", T=tf.int32),
        inputs=["x"],
        outputs=["y", "which"],
    )
    _, before = run_fold(g)
    assert lowered(g)["m"] == ("Identity", ["f"]) and lowered(g)["f"] == ("Neg", ["x"])
    # value_index: the constant `m/port_1`, which `which` (an Identity of it) folds into, waiting for `m`
    assert lowered(g)["which"] == ("Const", ["^m"]) and value(g, "which") == 1
    assert "t" not in g and "sw" not in g
    assert_same_outputs(before, g)


def test_a_switch_whose_dead_side_reaches_an_output_is_left_alone() -> None:
    g = graph(
        placeholder("x"),
        const("p", True, dtype=tf.bool),
        node("sw", "Switch", "x", "p"),
        node("f", "Neg", "sw:0"),
        node("t", "Square", "sw:1"),
        inputs=["x"],
        outputs=["t", "f"],
    )
    assert not run_fold(g)[0].changed


def test_a_v1_while_loop_inside_the_graph_keeps_working() -> None:
    def build() -> None:
        x = v1.placeholder(tf.float32, [2], name="x")
        _, total = v1.while_loop(
            lambda i, acc: i < 3, lambda i, acc: (i + 1, acc + tf.constant(2.0) * tf.constant(3.0)), [0, x]
        )
        tf.identity(total, name="y")

    g = tf_graph(build, ["x"], ["y"], cf_v1=True)
    _, before = run_fold(g)
    assert "Mul" not in set(ops(g).values())  # the loop-invariant product folded, with the loop's pivot
    assert_same_outputs(before, g)


# ----- If / Case with a constant condition --------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["If", "StatelessIf"])
@pytest.mark.parametrize("condition", [True, False])
def test_a_constant_if_inlines_the_taken_branch(op: str, condition: bool) -> None:
    def build() -> None:
        x = v1.placeholder(tf.float32, [2], name="x")
        y = tf.cond(tf.constant(condition), lambda: tf.tanh(x) * 2.0, lambda: tf.nn.relu(x) - 1.0, name="c")
        tf.identity(y, name="y")

    g = tf_graph(build, ["x"], ["y"])
    if op == "If":
        g.set_op("c", "If")
    _, before = run_fold(g)
    remaining = set(ops(g).values())
    assert not remaining & {"If", "StatelessIf"}
    assert ("Tanh" in remaining) == condition and ("Relu" in remaining) != condition
    assert not g.library.function  # both branches left the library with the call
    assert_same_outputs(before, g)


def test_a_constant_case_inlines_its_branch() -> None:
    def build() -> None:
        x = v1.placeholder(tf.float32, [2], name="x")
        branches = [lambda: tf.tanh(x), lambda: tf.nn.relu(x), lambda: tf.abs(x)]
        y = tf.switch_case(tf.constant(1), branches, name="case")
        tf.identity(y, name="y")

    g = tf_graph(build, ["x"], ["y"])
    _, before = run_fold(g)
    remaining = set(ops(g).values())
    assert "Relu" in remaining and not remaining & {"Case", "StatelessCase", "Tanh", "Abs"}
    assert_same_outputs(before, g)


def test_an_if_output_that_is_a_graph_output_keeps_its_name() -> None:
    def build() -> None:
        x = v1.placeholder(tf.float32, [2], name="x")
        tf.cond(tf.constant(True), lambda: tf.tanh(x), lambda: x, name="c")

    g = tf_graph(build, ["x"], ["c"])
    _, before = run_fold(g)
    assert lowered(g)["c"] == ("Identity", ["c/Tanh"])
    assert_same_outputs(before, g)


# ----- shapes -------------------------------------------------------------------------------------------------------


def shape_graph(batch: int | None) -> Callable[[], None]:
    def build() -> None:
        x = v1.placeholder(tf.float32, [batch, 4], name="x")
        z = v1.placeholder(tf.float32, [4], name="z")
        size = tf.size(x, name="size")
        tf.reshape(x, tf.stack([size, 1]), name="flat")
        shapes = tf.raw_ops.ShapeN(input=[x, z], name="shapes")
        reduce_x, reduce_z = tf.raw_ops.BroadcastGradientArgs(s0=shapes[0], s1=shapes[1], name="bcast")
        tf.identity(tf.rank(x, name="rank") + reduce_z[0] * 0, name="r")
        tf.identity(reduce_x, name="rx")
        tf.identity(reduce_z, name="rz")
        tf.identity(tf.shape(x, name="shape"), name="s")

    return build


def test_static_shapes_become_constants() -> None:
    g = tf_graph(shape_graph(3), ["x", "z"], ["flat", "r", "rx", "rz", "s"])
    _, before = run_fold(g)
    remaining = set(ops(g).values())
    assert not remaining & {"Shape", "Size", "Rank", "ShapeN", "BroadcastGradientArgs", "Pack"}
    assert value(g, "rz").tolist() == [0] and value(g, "rx").tolist() == [] and value(g, "s").tolist() == [3, 4]
    assert_same_outputs(before, g)


def test_the_shape_of_a_folding_node_is_taken_without_evaluating_it() -> None:
    g = graph(
        placeholder("x", shape=(6,)),
        const("a", np.ones((2, 3), np.float32), "^x"),
        node("n", "Neg", "a"),
        node("shape", "Shape", "n", out_type=tf.int32),
        node("y", "Reshape", "x", "shape", Tshape=tf.int32),
        node("z", "Identity", "n"),
        inputs=["x"],
        outputs=["y", "z"],
    )
    _, before = run_fold(g)
    assert lowered(g)["shape"] == ("Const", ["^x"]) and value(g, "shape").tolist() == [2, 3]
    assert lowered(g)["z"] == ("Const", ["^x"]) and "n" not in g
    assert_same_outputs(before, g)


def test_dynamic_shapes_stay_and_rank_still_folds() -> None:
    g = tf_graph(shape_graph(None), ["x", "z"], ["flat", "r", "rx", "rz", "s"])
    _, before = run_fold(g)
    assert {"Shape", "Size", "ShapeN", "BroadcastGradientArgs"} <= set(ops(g).values())
    assert g.op("rank") == "Const"
    assert_same_outputs(before, g)


def test_a_shape_inside_a_cond_branch_keeps_a_control_edge_from_its_input() -> None:
    def build() -> None:
        x = v1.placeholder(tf.float32, [2, 3], name="x")
        p = v1.placeholder(tf.bool, [], name="p")
        shape = lambda: tf.cast(tf.raw_ops.Shape(input=tf.tanh(x)), tf.float32)  # noqa: E731
        y = v1.cond(p, shape, lambda: tf.constant([0.0, 0.0]), name="c")
        tf.identity(y, name="y")

    g = tf_graph(build, ["x", "p"], ["y"], cf_v1=True)
    _, before = run_fold(g)
    assert "Shape" not in set(ops(g).values())
    folded = [name for name in g if g.op(name) == "Const" and "Tanh" in {g.op(s) for s in g.control_inputs_of(name)}]
    assert folded, lowered(g)
    assert_same_outputs(before, g)


def test_input_shape_from_the_command_line_enables_folding(tmp_path: Path) -> None:
    g = tf_graph(shape_graph(None), ["x", "z"], ["flat", "r", "rx", "rz", "s"])
    model = tmp_path / "model.pb"
    optimizer.save(g, model)
    out = tmp_path / "out.pbtxt"
    code = main([str(model), "-o", str(out), "--passes", "fold,prune", "--input-shape", "x:3,4", "-q"])
    assert code == 0
    folded = read_graph_def(out)
    assert not {n.op for n in folded.node} & {"Shape", "Size", "ShapeN", "BroadcastGradientArgs"}
    assert code == main([str(model), "-o", str(out), "--passes", "fold", "--input-shape", "x:3,4,z:4", "-q"])
    assert main([str(model), "-o", str(out), "--passes", "fold", "--input-shape", "x:3,5", "-q"]) == 2


def test_picks_of_known_dimensions_of_a_dynamic_shape_fold() -> None:
    def build() -> None:
        x = v1.placeholder(tf.float32, [None, 4, 5], name="x")
        shape = tf.raw_ops.Shape(input=x, name="shape")
        tf.identity(shape[1] * shape[2], name="known")  # 20, whatever the batch
        tf.identity(shape[0], name="batch")  # unknown: stays
        tf.identity(tf.gather(shape, [2, 1], name="pick"), name="picked")

    g = tf_graph(build, ["x"], ["known", "batch", "picked"])
    _, before = run_fold(g)
    assert value(g, "known").tolist() == 20 and value(g, "picked").tolist() == [5, 4]
    assert g.op("batch") == "Identity" and g.op("shape") == "Shape"
    assert set(g.node("shape").attrs) == {"T", "out_type"}  # reading a non-constant never adds attrs
    assert_same_outputs(before, g)


def test_a_call_of_a_pure_function_on_constants_folds_with_the_library() -> None:
    @tf.function
    def square_plus_one(v: Any) -> Any:
        return v * v + 1.0

    def build() -> None:
        x = v1.placeholder(tf.float32, [2], name="x")
        tf.add(x, square_plus_one(tf.constant([1.0, 2.0])), name="y")

    g = tf_graph(build, ["x"], ["y"])
    calls = [name for name in g if g.op(name) in ("PartitionedCall", "StatefulPartitionedCall")]
    assert calls and g.op(calls[0]) == "PartitionedCall"
    _, before = run_fold(g)
    assert g.op(calls[0]) == "Const" and value(g, calls[0]).tolist() == [2.0, 5.0]
    assert_same_outputs(before, g)


def test_a_multi_output_graph_output_does_not_grow_the_graph_run_after_run() -> None:
    g = graph(
        const("axis", 0, dtype=tf.int32),
        const("v", [1.0, 2.0]),
        node("split", "Split", "axis", "v", num_split=2),
        outputs=["split:0", "split:1"],
    )
    before = g.to_graph_def()
    for _ in range(3):
        assert not run_fold(g)[0].changed
    assert g.to_graph_def() == before


def test_the_growth_guard_caps_what_many_small_folds_add_up_to(caplog: pytest.LogCaptureFixture) -> None:
    """Thirty `Fill`s of 400 KB each pass `max-bytes`, but together they would add 12 MB of constants: with
    `max-growth=2000000` only what fits folds (judged from static sizes, before anything is computed), the rest
    stays as it is, and one warning says how to raise it."""
    dims = const("dims", [100_000], dtype=tf.int32)
    fills = [const("value", 1.5)]
    for index in range(30):
        fills.append(node(f"seed{index}", "AddV2", "value", f"offset{index}"))
        fills.append(const(f"offset{index}", float(index)))
        fills.append(node(f"fill{index}", "Fill", "dims", f"seed{index}", index_type=tf.int32))
        fills.append(node(f"out{index}", "Sin", f"fill{index}"))
    g = graph(placeholder("x"), dims, *fills, outputs=[f"out{index}" for index in range(30)])
    before = g.to_graph_def()
    with caplog.at_level(logging.WARNING):
        run_fold(g, "fold{max-growth=2000000}")
    kinds = ops(g)
    folded = [index for index in range(30) if kinds[f"out{index}"] == "Const"]
    assert 0 < len(folded) <= 5, "each Sin output is 400 KB by its static shape: at most five fit in 2 MB"
    assert fold_module.constant_bytes(g) <= fold_module.constant_bytes(Graph.from_graph_def(before)) + 2_000_000
    assert any("max-growth" in record.message for record in caplog.records)
    for index in folded:
        assert np.allclose(value(g, f"out{index}"), np.sin(np.float32(1.5 + index)))


def test_the_automatic_growth_guard_lets_a_model_double_its_weights() -> None:
    """`Cast` of float16 weights to float32 doubles them: the automatic limit (64 MiB or the constants' own size)
    allows it, so ordinary models fold as before."""
    weights = np.random.default_rng(0).standard_normal((64, 64)).astype(np.float16)
    g = graph(
        placeholder("x", shape=[1, 64]),
        const("w16", weights, dtype=tf.float16),
        node("w", "Cast", "w16", SrcT=tf.float16, DstT=tf.float32),
        node("y", "MatMul", "x", "w"),
        outputs=["y"],
    )
    run_fold(g)
    assert ops(g)["w"] == "Const" and "w16" not in ops(g)
