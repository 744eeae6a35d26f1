"""The structural check: a graph as lifted is checked from what lifting recorded; a changed one is swept."""

from __future__ import annotations

import pytest

from optimizer import Tensor
from optimizer.errors import GraphError
from optimizer.invariants import check_graph
from tests.builder import graph_of


def test_a_graph_lifted_in_order_is_checked_from_its_recorded_port_reads() -> None:
    graph = graph_of("x = Placeholder()\na = Neg(x)\ny = Neg(a:0)\n", outputs=("y",))
    assert graph.lifted_port_reads() == []
    check_graph(graph)
    graph.set_input("y", 0, Tensor("x"))
    assert graph.lifted_port_reads() is None  # changed: the next full check sweeps
    check_graph(graph)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = Placeholder()\ny = Neg(x:1)\n", r"node 'y' reads x:1, but 'x' has 1 output\(s\)"),
        ("n = NoOp()\ny = Identity(n)\n", r"node 'y' reads n:0, but 'n' has 0 output\(s\)"),
        ("x = Placeholder()\nu = Unpack(x)\ny = Identity(u)\n", r"node 'y' reads u:0, but 'u' has 0 output\(s\)"),
    ],
    ids=["port-above-count", "no-output-op", "list-output-op-with-none"],
)
def test_reads_of_ports_a_node_does_not_have_are_refused_as_lifted_and_after_a_change(text: str, message: str) -> None:
    graph = graph_of(text)
    assert graph.lifted_port_reads() is not None
    with pytest.raises(GraphError, match=message):
        check_graph(graph)
    graph.mutations += 1  # the sweep finds the same
    with pytest.raises(GraphError, match=message):
        check_graph(graph)


def test_a_graph_with_a_node_before_its_input_is_swept_for_cycles() -> None:
    graph = graph_of("y = Neg(a)\na = Neg(y)\n")
    assert graph.lifted_port_reads() is None
    with pytest.raises(GraphError, match="cycle outside a while loop"):
        check_graph(graph)
    check_graph(graph_of("y = Neg(a)\na = Placeholder()\n"))  # out of order, but no cycle


@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ({"x": [1]}, r"node 'y' has data inputs in slots \[1\], not 0..0"),
        ({"x": [0], "z": [0]}, r"node 'y' has data inputs in slots \[0, 0\], not 0..1"),
        ({"x": [0], "z": [2]}, r"node 'y' has data inputs in slots \[0, 2\], not 0..1"),
    ],
    ids=["one-slot-not-zero", "a-slot-twice", "a-gap"],
)
def test_data_inputs_must_fill_slots_from_zero(slots: dict[str, list[int]], message: str) -> None:
    graph = graph_of("x = Placeholder()\nz = Placeholder()\ny = NoOp()\n")
    for source, keys in slots.items():
        for key in keys:
            graph.nx.add_edge(source, "y", key=key, port=0)  # behind the primitives' back, as a broken pass might
    with pytest.raises(GraphError, match=message):
        check_graph(graph, ["y"])


def test_a_constant_whose_content_does_not_fit_its_shape_is_refused() -> None:
    """TensorFlow cannot parse it; `optimizer.load` says which constant and by how much."""
    from optimizer.invariants import check_constant_shapes
    from tests.passes.build import const, graph

    g = graph(const("w", [[1.0, 2.0], [3.0, 4.0]]))
    check_constant_shapes(g)
    g.node("w").proto.attr["value"].tensor.tensor_content = b"\x00" * 12
    with pytest.raises(GraphError, match=r"constant 'w' holds 12 bytes of content where its shape \[2, 2\] needs 16"):
        check_constant_shapes(g)
