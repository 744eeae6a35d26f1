"""Unit tests of `passes/identity.py` that golden pairs show badly: budgets, idempotence, each keep reason."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import optimizer
from optimizer import Graph, PassContext, PassManager, get_pass
from optimizer.graph_io import read_graph_def
from optimizer.protos import FunctionDef, FunctionDefLibrary, GraphDef, NodeDef
from optimizer.verify import verify
from passes.identity import RemoveIdentities, keep_reason
from tests.passes.build import const, graph, lowered, node, placeholder

tf = pytest.importorskip("tensorflow")
GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "identity"


def run_identity(g: Graph, *, max_rewrites: int | None = None) -> optimizer.RunReport:
    return PassManager("identity", context=PassContext(max_rewrites=max_rewrites)).run(g)


def chain(length: int) -> Graph:
    """x -> id0 -> id1 -> ... -> neg -> y (y, an Identity, is the output)."""
    nodes = [placeholder("x")]
    previous = "x"
    for index in range(length):
        nodes.append(node(f"id{index}", "Identity", previous))
        previous = f"id{index}"
    nodes += [node("neg", "Neg", previous), node("y", "Identity", "neg")]
    return graph(*nodes, inputs=["x"], outputs=["y"])


def test_registry_name_is_the_class_name() -> None:
    assert get_pass("identity") is RemoveIdentities
    assert RemoveIdentities.name == "identity"
    assert str(RemoveIdentities()) == "identity"


def test_second_run_changes_nothing() -> None:
    g = chain(3)
    first = run_identity(g)
    assert first.records[0].changed and first.records[0].nodes_after == 3
    second = run_identity(g)
    assert not second.records[0].changed
    assert second.records[0].mutations == 0


@pytest.mark.parametrize("budget", [0, 1, 2, 4])
def test_budget_stops_after_k_rewrites(budget: int) -> None:
    g = chain(4)
    context = PassContext(max_rewrites=budget)
    PassManager("identity", context=context).run(g)
    assert sum(name.startswith("id") for name in g) == 4 - budget
    assert context.rewrites == budget
    assert lowered(g)["y"] == ("Identity", ["neg"])


def test_graph_outputs_and_inputs_are_never_dropped() -> None:
    # Every node here is a forwarding op; the ones that are the interface must stay under their names.
    g = graph(
        placeholder("x"),
        node("fed", "Identity", "x"),
        node("mid", "Identity", "fed"),
        node("out", "Snapshot", "mid"),
        node("out2", "IdentityN", "mid", "fed", T=[tf.float32, tf.float32]),
        inputs=["fed"],
        outputs=["out", "out2:1"],
    )
    run_identity(g)
    assert lowered(g) == {
        "x": ("Placeholder", []),
        "fed": ("Identity", ["x"]),
        "out": ("Snapshot", ["fed"]),
        "out2": ("IdentityN", ["fed", "fed"]),
    }
    assert [str(tensor) for tensor in g.outputs] == ["out:0", "out2:1"]


def test_both_uses_of_one_identity_move() -> None:
    g = graph(placeholder("x"), node("a", "Identity", "x"), node("y", "AddV2", "a", "a"), outputs=["y"])
    run_identity(g)
    assert lowered(g)["y"] == ("AddV2", ["x", "x"])


def test_identity_of_a_later_port_forwards_that_port() -> None:
    g = graph(
        placeholder("x", shape=(4,)),
        const("axis", 0, dtype=tf.int32),
        node("split", "Split", "axis", "x", num_split=2),
        node("a", "Identity", "split:1"),
        const("k", 1.0, "^a"),
        node("y", "AddV2", "a", "k"),
        inputs=["x"],
        outputs=["y"],
    )
    original = g.to_graph_def()
    run_identity(g)
    assert lowered(g)["y"] == ("AddV2", ["split:1", "k"])
    assert lowered(g)["k"] == ("Const", ["^split"])
    result = verify(original, g.to_graph_def(), g.inputs, g.outputs)
    assert result.skipped is None and result.passed


def test_forwarded_control_inputs_are_not_duplicated() -> None:
    g = graph(
        placeholder("x"),
        node("side", "Square", "x"),
        node("a", "Identity", "x", "^side"),
        node("y", "Neg", "a", "^side"),
        outputs=["y"],
    )
    run_identity(g)
    assert lowered(g)["y"] == ("Neg", ["x", "^side"])


SWITCH = [placeholder("x"), placeholder("p", tf.bool, ()), node("sw", "Switch", "x", "p")]


@pytest.mark.parametrize(
    ("nodes", "reason"),
    [
        pytest.param(
            [*SWITCH, node("pivot", "Identity", "sw:1"), const("k", 1.0, "^pivot")],
            "it anchors a control edge to one output of a Switch",
            id="switch-anchor",
        ),
        pytest.param(
            [
                node("v", "VariableV2", T=None, dtype=tf.float32, shape=(2,)),
                node("pivot", "Identity", "v"),
                node("y", "Neg", "pivot"),
            ],
            "it reads a ref tensor",
            id="ref",
        ),
        pytest.param(
            [
                *SWITCH,
                node("side", "Square", "x"),
                node("pivot", "Identity", "x", "^side"),
                node("merge", "Merge", "pivot", "sw", N=2),
            ],
            "it has control inputs and feeds a control-flow op",
            id="control-input-into-merge",
        ),
        pytest.param(
            [
                placeholder("x"),
                node("side", "Square", "x"),
                node("pivot", "Identity", "x", "^side"),
                node("enter", "Enter", "pivot", frame_name="loop"),
            ],
            "it has control inputs and feeds a control-flow op",
            id="control-input-into-enter",
        ),
        pytest.param(
            [*SWITCH, node("pivot", "Identity", "sw:1"), node("y", "Neg", "pivot")],
            None,
            id="switch-output-with-data-consumers-only",
        ),
        pytest.param(
            [*SWITCH, node("pivot", "Identity", "x"), node("merge", "Merge", "pivot", "sw", N=2)],
            None,
            id="into-merge-without-control-inputs",
        ),
        pytest.param(
            [placeholder("x"), node("pivot", "Identity", "x"), const("k", 1.0, "^pivot")],
            None,
            id="control-consumer-of-plain-identity",
        ),
        pytest.param(  # found by scripts/fuzz.py: removing it failed ("still used by y"), an error of exit 2
            [node("pivot", "Identity", "^k"), const("k", 1.0), node("y", "Neg", "pivot")],
            "an output that is read has no data input to forward (a malformed node)",
            id="identity-without-data-input",
        ),
        pytest.param(
            [placeholder("x"), node("pivot", "IdentityN", "x"), node("y", "Neg", "pivot:1")],
            "an output that is read has no data input to forward (a malformed node)",
            id="identity-n-read-past-its-inputs",
        ),
    ],
)
def test_keep_reasons(nodes: list[NodeDef], reason: str | None) -> None:
    g = graph(*nodes)
    assert keep_reason(g, "pivot") == reason
    run_identity(g)
    assert ("pivot" in g) == (reason is not None)


@pytest.mark.parametrize("taken", [True, False])
def test_cond_pivots_keep_each_branch_on_its_side(taken: bool) -> None:
    source = GOLDEN / "cond_switch_t.pbtxt"
    g = optimizer.load(source, ["p", "x"], ["y:0"])
    run_identity(g)
    assert {"cond/switch_t", "cond/switch_f"} <= set(g) and "cond/pred_id" not in g
    feeds = {"p:0": np.array(taken), "x:0": np.array([1.0, -2.0], np.float32)}
    result = verify(read_graph_def(source), g.to_graph_def(), g.inputs, g.outputs, feeds=feeds)
    assert result.skipped is None and result.passed


def test_function_bodies_are_left_alone() -> None:
    body = FunctionDef()
    body.signature.name = "f"
    body.node_def.add(name="inner", op="Identity", input=["a"])
    graph_def = GraphDef(library=FunctionDefLibrary(function=[body]))
    graph_def.node.extend([placeholder("x"), node("a", "Identity", "x"), node("y", "Neg", "a")])
    g = Graph.from_graph_def(graph_def, outputs=[optimizer.Tensor("y")])
    run_identity(g)
    assert "a" not in g
    assert g.to_graph_def().library == FunctionDefLibrary(function=[body])
