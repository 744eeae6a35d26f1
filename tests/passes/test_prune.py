"""Unit tests of `passes/prune.py` that golden pairs show badly: budgets, idempotence, the interface."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer import Graph, PassContext, PassManager, RunReport, Tensor, get_pass
from optimizer.protos import FunctionDef, FunctionDefLibrary, GraphDef
from optimizer.verify import verify
from passes.prune import Prune, dead_nodes, live_nodes
from tests.passes.build import const, graph, lowered, node, placeholder

tf = pytest.importorskip("tensorflow")


def run_prune(g: Graph, *, max_rewrites: int | None = None) -> RunReport:
    return PassManager("prune", context=PassContext(max_rewrites=max_rewrites)).run(g)


def with_dead_branch(outputs: tuple[str, ...] = ("y",)) -> Graph:
    return graph(
        placeholder("x"),
        node("y", "Relu", "x"),
        node("sq", "Square", "x"),
        node("dead", "Neg", "sq"),
        inputs=["x"],
        outputs=list(outputs),
    )


def test_registry_name_is_the_class_name() -> None:
    assert get_pass("prune") is Prune
    assert Prune.name == "prune"
    assert str(Prune()) == "prune"


def test_second_run_changes_nothing() -> None:
    g = with_dead_branch()
    first = run_prune(g)
    assert first.records[0].changed and first.records[0].mutations == 2
    second = run_prune(g)
    assert not second.records[0].changed
    assert second.records[0].mutations == 0


def test_zero_budget_removes_nothing() -> None:
    g = with_dead_branch()
    context = PassContext(max_rewrites=0)
    report = PassManager("prune", context=context).run(g)
    assert not report.changed and len(g) == 4


def test_one_rewrite_is_the_whole_prune() -> None:
    context = PassContext(max_rewrites=1)
    g = with_dead_branch()
    PassManager("prune", context=context).run(g)
    assert set(g) == {"x", "y"} and context.rewrites == 1


def test_a_graph_without_outputs_is_left_alone() -> None:
    g = with_dead_branch(outputs=())
    report = run_prune(g)
    assert not report.changed and len(g) == 4


def test_outputs_and_inputs_are_never_dropped() -> None:
    # `c` is an output that nothing else reaches; `z` an input nothing reads; `split:1` a later port.
    g = graph(
        placeholder("x", shape=(4,)),
        placeholder("z"),
        const("c", 3.0),
        const("axis", 0, dtype=tf.int32),
        node("split", "Split", "axis", "x", num_split=2),
        node("dead", "Neg", "split"),
        inputs=["x", "z"],
        outputs=["c", "split:1"],
    )
    original = g.to_graph_def()
    run_prune(g)
    assert set(g) == {"x", "z", "c", "axis", "split"}
    assert [str(tensor) for tensor in g.outputs] == ["c:0", "split:1"]
    result = verify(original, g.to_graph_def(), g.inputs, g.outputs)
    assert result.skipped is None and result.passed


def test_a_declared_default_input_keeps_its_default() -> None:
    g = graph(
        const("default", False, dtype=tf.bool),
        node("training", "PlaceholderWithDefault", "default", T=None, dtype=tf.bool, shape=()),
        placeholder("x"),
        node("y", "Relu", "x"),
        inputs=["x", "training"],
        outputs=["y"],
    )
    run_prune(g)
    assert set(g) == {"default", "training", "x", "y"}


def test_stateful_nodes_no_output_needs_go() -> None:
    g = graph(
        placeholder("x"),
        node("v", "VariableV2", T=None, dtype=tf.float32, shape=(2,)),
        node("step", "AssignAdd", "v", "x"),
        node("train_op", "NoOp", "^step", T=None),
        node("y", "Relu", "x"),
        inputs=["x"],
        outputs=["y"],
    )
    run_prune(g)
    assert lowered(g) == {"x": ("Placeholder", []), "y": ("Relu", ["x"])}


def test_live_nodes_follow_control_edges_and_loop_back_edges() -> None:
    g = graph(
        placeholder("x"),
        node("side", "Square", "x"),
        node("barrier", "NoOp", "^side", T=None),
        node("enter", "Enter", "x", frame_name="loop"),
        node("merge", "Merge", "enter", "next", N=2),
        node("body", "Neg", "merge"),
        node("next", "NextIteration", "body"),
        node("exit", "Exit", "merge"),
        node("y", "Relu", "exit", "^barrier"),
        node("dead", "Neg", "x"),
        inputs=["x"],
        outputs=["y"],
    )
    assert live_nodes(g) == set(g) - {"dead"}


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_peeling_finds_exactly_the_nodes_no_output_or_input_reaches(data: st.DataObject) -> None:
    count = data.draw(st.integers(1, 14), label="nodes")
    nodes = []
    for index in range(count):  # each node reads earlier ones only: no cycle
        earlier = [f"n{other}" for other in range(index)]
        reads = data.draw(st.lists(st.sampled_from(earlier), max_size=3), label=f"reads {index}") if earlier else []
        waits = data.draw(st.lists(st.sampled_from(earlier), max_size=2), label=f"waits {index}") if earlier else []
        nodes.append(node(f"n{index}", "AddN", *reads, *(f"^{name}" for name in waits), N=len(reads)))
    names = [f"n{index}" for index in range(count)]
    outputs = data.draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True), label="outputs")
    inputs = data.draw(st.lists(st.sampled_from(names), max_size=2, unique=True), label="inputs")
    g = graph(*nodes, inputs=inputs, outputs=outputs)
    dead = dead_nodes(g)
    assert len(dead) == len(set(dead))
    assert set(dead) == set(g) - live_nodes(g)


def test_a_dead_loop_is_found_by_the_sweep() -> None:
    g = graph(
        placeholder("x"),
        node("enter", "Enter", "x", frame_name="loop"),
        node("merge", "Merge", "enter", "next", N=2),
        node("next", "NextIteration", "merge"),
        node("y", "Relu", "x"),
        inputs=["x"],
        outputs=["y"],
    )
    assert sorted(dead_nodes(g)) == ["enter", "merge", "next"]


def test_the_function_library_is_left_as_it_is() -> None:
    body = FunctionDef()
    body.signature.name = "unused_function"
    graph_def = GraphDef(library=FunctionDefLibrary(function=[body]))
    graph_def.node.extend([placeholder("x"), node("y", "Relu", "x"), node("dead", "Neg", "x")])
    g = Graph.from_graph_def(graph_def, outputs=[Tensor("y")])
    run_prune(g)
    assert "dead" not in g
    assert g.to_graph_def().library == FunctionDefLibrary(function=[body])


def test_kept_nodes_and_what_they_read_stay_though_no_output_needs_them() -> None:
    g = graph(
        placeholder("x"),
        node("y", "Relu", "x"),
        const("keys", [1.0, 2.0]),
        node("fill", "Neg", "keys"),
        node("init", "NoOp", "^fill", T=None),
        node("dead", "Neg", "keys"),
        inputs=["x"],
        outputs=["y"],
    )
    g.keep = ["init"]
    assert set(dead_nodes(g)) == {"dead"}
    run_prune(g)
    assert set(g) == {"x", "y", "keys", "fill", "init"}
    assert g.copy().keep == ["init"] and g.copy().is_protected("init")
    g.keep = []
    run_prune(g)
    assert set(g) == {"x", "y"}
