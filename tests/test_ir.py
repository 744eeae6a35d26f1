"""The IR's primitives: lifting/lowering, queries, guarded mutation and mutation counting."""

from __future__ import annotations

import pytest

from optimizer import Graph, GraphError, Tensor
from optimizer.ir import Use
from optimizer.protos import AttrValue, GraphDef, NodeDef
from tests.builder import graph_def_of, graph_of

CHAIN = """
x = Placeholder()
c = Const()
a = AddV2(x, c)
s = Split(c, a)
b = Mul(s:1, s, ^c)
y = Identity(b, ^a)
"""


def test_tensor_names_parse_and_print() -> None:
    assert Tensor.parse("a") == Tensor("a", 0)
    assert Tensor.parse("scope/a:3") == Tensor("scope/a", 3)
    assert str(Tensor("a", 2)) == "a:2"
    with pytest.raises(ValueError):
        Tensor.parse("^a")


def test_lifting_parses_edges_once_and_lowering_gives_the_same_graph_def() -> None:
    graph = graph_of(CHAIN)
    assert graph.inputs_of("b") == [Tensor("s", 1), Tensor("s", 0)]
    assert graph.control_inputs_of("b") == ["c"]
    assert graph.uses(Tensor("s", 1)) == [Use("b", 0)]
    assert sorted(graph.control_consumers("a")) == ["y"]
    assert graph.to_graph_def() == graph_def_of(CHAIN)


def test_explicit_port_zero_spelling_survives_a_round_trip() -> None:
    text = "x = Placeholder()\ny = Identity(x:0)\n"
    assert graph_of(text).to_graph_def() == graph_def_of(text)


def test_lowering_keeps_library_versions_and_unknown_header_fields() -> None:
    graph_def = graph_def_of(CHAIN)
    graph_def.versions.producer = 1234
    graph_def.library.function.add().signature.name = "f"
    expected = GraphDef()
    expected.CopyFrom(graph_def)
    graph = Graph.from_graph_def(graph_def)
    assert graph.versions.producer == 1234
    assert graph.to_graph_def() == expected


def test_lifting_rejects_dangling_inputs_and_duplicate_names() -> None:
    with pytest.raises(GraphError, match="no node is named 'nothere'"):
        graph_of("a = Identity(nothere)")
    with pytest.raises(GraphError, match="used twice"):
        graph_of("a = Const()\na = Const()")


def test_remove_refuses_used_and_protected_nodes() -> None:
    graph = graph_of(CHAIN, inputs=("x",), outputs=("y",))
    with pytest.raises(GraphError, match="still used by"):
        graph.remove("a")
    with pytest.raises(GraphError, match="graph input or output"):
        graph.remove("y")
    with pytest.raises(GraphError, match="graph input or output"):
        graph.remove("x")
    assert graph.mutations == 0


def test_replace_all_uses_moves_data_uses_and_counts_one_mutation() -> None:
    graph = graph_of(CHAIN, outputs=("y",))
    moved = graph.replace_all_uses(Tensor("s", 1), Tensor("x"))
    assert moved == 1
    assert graph.inputs_of("b") == [Tensor("x"), Tensor("s", 0)]
    assert graph.mutations == 1
    assert graph.replace_all_uses(Tensor("s", 1), Tensor("x")) == 0
    assert graph.mutations == 1


def test_add_node_makes_unique_names_and_remove_nodes_takes_closed_sets() -> None:
    graph = graph_of(CHAIN, outputs=("y",))
    first = graph.add_node("a", "Neg", [Tensor("x")], attrs={"T": AttrValue(type=1)})
    second = graph.add_node("a", "Neg", [Tensor(first)], control_inputs=["c"])
    assert (first, second) == ("a_1", "a_2")
    assert graph.node(second).attrs == {} and graph.control_inputs_of(second) == ["c"]
    with pytest.raises(GraphError, match="still used by a_2"):
        graph.remove_nodes([first])
    assert graph.remove_nodes([first, second]) == 2
    assert "a_1" not in graph and "a_2" not in graph


def test_control_inputs_are_added_once_and_removed() -> None:
    graph = graph_of(CHAIN)
    assert graph.add_control_input("y", "x") is True
    assert graph.add_control_input("y", "x") is False
    assert graph.add_control_input("b", "s") is True  # b reads s as data: that is not a control input
    assert graph.add_control_input("b", "s") is False
    assert graph.control_inputs_of("b") == ["c", "s"]
    assert graph.control_inputs_of("y") == ["a", "x"]
    assert graph.remove_control_input("y", "a") is True
    assert graph.to_graph_def().node[-1].input == ["b", "^x"]


def test_set_input_set_op_and_attrs_count_only_real_changes() -> None:
    graph = graph_of(CHAIN)
    graph.set_input("a", 1, Tensor("x"))
    assert graph.inputs_of("a") == [Tensor("x"), Tensor("x")]
    graph.set_op("a", "AddV2")
    value = AttrValue(type=1)
    graph.set_attr("a", "T", value)
    graph.set_attr("a", "T", value)
    graph.del_attr("a", "missing")
    assert graph.mutations == 2
    with pytest.raises(GraphError, match="has no input 5"):
        graph.set_input("a", 5, Tensor("x"))


def test_op_counts_and_iteration_follow_insertion_order() -> None:
    graph = graph_of(CHAIN)
    assert list(graph) == ["x", "c", "a", "s", "b", "y"]
    assert graph.op_counts()["Const"] == 1 and len(graph) == 6


def test_a_stand_in_is_lowered_in_a_node_s_place_with_the_node_s_inputs() -> None:
    graph = graph_of(CHAIN, inputs=("x",), outputs=("y",))
    graph.set_input("y", 0, Tensor("s", 1))  # y rewired: its inputs come from its edges

    def stand_in(proto: NodeDef) -> NodeDef | None:
        return NodeDef(name=proto.name, op="Stand") if proto.name in ("b", "y") else None

    lowered = {node.name: (node.op, list(node.input)) for node in graph.to_graph_def(stand_in).node}
    assert lowered["b"] == ("Stand", ["s:1", "s", "^c"]) and lowered["y"] == ("Stand", ["s:1", "^a"])
    assert lowered["a"] == ("AddV2", ["x", "c"]) and graph.op("b") == "Mul"  # the graph itself is as it was


def test_to_bytes_is_the_deterministic_serialization_of_the_lowered_graph_def() -> None:
    graph_def = graph_def_of(CHAIN)
    graph_def.versions.producer = 1234
    graph_def.library.function.add().signature.name = "f"
    graph = Graph.from_graph_def(graph_def)
    graph.set_input("y", 0, Tensor("s", 1))
    graph.add_node("late", "Neg", [Tensor("y")], ["x"])
    assert graph.to_bytes() == graph.to_graph_def().SerializeToString(deterministic=True)
    lowered = {node.name: list(node.input) for node in graph.to_graph_def().node}
    for node in graph.nodes():  # a NodeDef's own input field is as written or empty, never stale
        assert list(node.proto.input) in ([], lowered[node.name]), node.name
    assert list(graph.node("y").proto.input) == [] and list(graph.node("b").proto.input) == ["s:1", "s", "^c"]


def test_nodes_of_follows_adds_removals_and_op_changes() -> None:
    graph = graph_of(CHAIN)
    assert graph.nodes_of("Identity") == ["y"] and graph.nodes_of({"Mul", "AddV2"}) == ["a", "b"]
    graph.set_op("b", "Sub")
    graph.add_node("m", "Mul", [Tensor("x"), Tensor("x")])
    assert graph.nodes_of({"Mul", "Sub"}) == ["m", "b"]
    graph.remove("y")
    assert graph.nodes_of("Identity") == [] and graph.op_counts().get("Identity") is None


def test_edge_queries_and_touched_nodes() -> None:
    graph = graph_of(CHAIN)
    assert sorted(graph.in_edges("b"), key=lambda edge: edge[1]) == [
        ("c", -1, {"order": 0}),
        ("s", 0, {"port": 1}),
        ("s", 1, {"port": 0}),
    ]
    assert sorted(target for target, _, _ in graph.out_edges("c")) == ["a", "b", "s"]
    assert set(graph.predecessors("b")) == {"s", "c"} and set(graph.successors("a")) == {"s", "y"}
    assert graph.in_degree("b") == 3
    assert graph.take_touched() == set()
    graph.replace_all_uses(Tensor("s", 1), Tensor("a"))
    graph.set_attr("x", "dtype", AttrValue(type=1))
    assert graph.take_touched() == {"b", "x", "a"}  # `a` reads x, whose attrs changed


def test_move_readers_moves_data_ports_and_control_edges_once() -> None:
    graph = graph_of(
        "x = Placeholder()\nold = Split(x)\nnew = Split(x)\n"
        "a = AddV2(old:1, old:0)\nb = Neg(x, ^old, ^new)\nc = Neg(x, ^old)\n"
    )
    before = graph.mutations
    assert graph.move_readers("old", "new") == 4
    assert graph.mutations == before + 1
    assert graph.inputs_of("a") == [Tensor("new", 1), Tensor("new", 0)]
    assert graph.control_inputs_of("b") == ["new"] and graph.control_inputs_of("c") == ["new"]
    assert not graph.is_used("old")
    assert [list(node.input) for node in graph.to_graph_def().node if node.name == "a"] == [["new:1", "new"]]


def test_lifting_rejects_a_node_without_a_name_or_an_op() -> None:
    with pytest.raises(GraphError, match="node '' has no name or op"):
        Graph.from_graph_def(GraphDef(node=[{"op": "NoOp"}]))
    with pytest.raises(GraphError, match="node 'x' has no name or op"):
        Graph.from_graph_def(GraphDef(node=[{"name": "x"}]))


def test_retypes_counts_only_in_place_changes_of_an_op_or_an_attr() -> None:
    graph = graph_of(CHAIN, inputs=("x",), outputs=("y",))
    graph.set_input("b", 1, Tensor("a"))
    graph.add_node("z", "NoOp")
    assert graph.retypes == 0  # edges and new nodes leave every existing proto as it was
    graph.set_op("b", "AddV2")
    graph.set_attr("c", "dtype", AttrValue(type=2))
    graph.del_attr("c", "dtype")
    graph.set_op("b", "AddV2")  # no change, no count
    assert graph.retypes == 3
    graph.restore(graph.copy())
    assert graph.retypes == 4  # never goes back, so a cache taken before a rollback is not trusted after it


def test_retypes_of_counts_one_node_s_in_place_changes_and_copies_start_with_an_empty_memo() -> None:
    graph = graph_of(CHAIN, inputs=("x",), outputs=("y",))
    graph.memo["fact"] = 1
    graph.set_input("b", 1, Tensor("a"))
    assert graph.retypes_of("b") == 0
    graph.set_op("b", "AddV2")
    graph.set_attr("b", "T", AttrValue(type=2))
    graph.set_attr("c", "dtype", AttrValue(type=2))
    assert (graph.retypes_of("b"), graph.retypes_of("c"), graph.retypes_of("a")) == (2, 1, 0)
    assert graph.copy().memo == {} and graph.memo == {"fact": 1}
    graph.restore(graph.copy())
    assert graph.memo == {}


def test_sinks_are_the_nodes_nothing_reads_in_graph_order() -> None:
    graph = graph_of(CHAIN)
    assert graph.sinks() == ["y"]
    graph.add_node("z", "NoOp", control_inputs=["y"])
    graph.add_node("w", "NoOp")
    assert graph.sinks() == ["z", "w"]
