"""Graph diff by node name."""

from __future__ import annotations

from optimizer.diff import diff_graph_defs
from tests.builder import graph_def_of

BEFORE = """
x = Placeholder()
c = Const()
a = AddV2(x, c)
i = Identity(a)
y = Neg(i)
"""


def test_identical_graphs_have_no_difference() -> None:
    assert diff_graph_defs(graph_def_of(BEFORE), graph_def_of(BEFORE)).same


def test_removed_added_and_changed_nodes_are_named_with_what_changed() -> None:
    after = graph_def_of(
        """
x = Placeholder()
c = Const(T=DT_FLOAT)
a = Sub(x, c)
y = Neg(a)
z = Relu(y)
"""
    )
    result = diff_graph_defs(graph_def_of(BEFORE), after)
    assert result.removed == ["i"] and result.added == ["z"]
    assert result.changed == {"c": ["attr T: unset -> f32"], "a": ["op AddV2 -> Sub"], "y": ["inputs (i) -> (a)"]}
    assert result.op_counts["Identity"] == (1, 0) and result.op_counts["Relu"] == (0, 1)
    assert not result.same


def test_changed_inputs_and_attrs_are_shown_old_to_new_in_the_printed_notation() -> None:
    before = graph_def_of("x = Placeholder()\ns = Split(x)\nc = NoOp()\ny = Mul(x:0, s:1, T=DT_FLOAT)")
    after = graph_def_of("x = Placeholder()\ns = Split(x)\nc = NoOp()\ny = Mul(x, s:0, ^c, T=DT_INT32)")
    after.node[3].device = "/device:CPU:0"
    assert diff_graph_defs(before, after).changed == {
        "y": ["inputs (x, s:1) -> (x, s, ^c)", 'device "" -> "/device:CPU:0"', "attr T: f32 -> i32"]
    }


def test_port_zero_written_out_is_the_same_input() -> None:
    assert diff_graph_defs(
        graph_def_of("x = Placeholder()\ny = Neg(x:0)"), graph_def_of("x = Placeholder()\ny = Neg(x)")
    ).same
