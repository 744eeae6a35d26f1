"""The pass manager: ordering, fixed point, computed `changed`, invariant checks, error messages."""

from __future__ import annotations

import pytest

from optimizer import Graph, Pass, PassContext, PassError, PassManager, Tensor, function_pass
from optimizer.errors import GraphError
from optimizer.invariants import check_graph
from tests.builder import graph_of

SMALL = """
x = Placeholder()
a = Identity(x)
b = Identity(a)
dead = Neg(x)
y = Neg(b)
"""


def test_records_time_mutations_and_node_counts_per_pass() -> None:
    graph = graph_of(SMALL, inputs=("x",), outputs=("y",))
    report = PassManager("identity,prune").run(graph)
    assert [record.name for record in report.records] == ["identity", "prune"]
    assert [(r.nodes_before, r.nodes_after) for r in report.records] == [(5, 3), (3, 2)]
    assert report.changed and report.nodes_before == 5 and report.nodes_after == 2
    assert report.op_counts_before["Identity"] == 2 and "Identity" not in report.op_counts_after
    assert all(record.seconds >= 0 for record in report.records)


def test_fixed_point_repeats_until_a_round_changes_nothing() -> None:
    graph = graph_of(SMALL, inputs=("x",), outputs=("y",))
    report = PassManager("prune,identity", fixed_point=True).run(graph)
    assert report.iterations == 2
    assert [record.changed for record in report.records] == [True, True, False, False]


def test_a_repeat_skips_each_pass_that_changed_nothing_on_the_graph_it_would_see_again() -> None:
    graph = graph_of(SMALL, inputs=("x",), outputs=("y",))
    report = PassManager("identity,strip,prune,strip", fixed_point=True).run(graph)
    # round 2: strip (as configured) last saw the graph round 1 left and changed nothing, and prune is idempotent
    # and changed it last: only identity runs again
    assert [(r.name, r.iteration, r.changed) for r in report.records] == [
        ("identity", 1, True),
        ("strip", 1, False),
        ("prune", 1, True),
        ("strip", 1, False),
        ("identity", 2, False),
    ]
    assert report.iterations == 2 and len(graph) == 2


def test_each_pass_is_written_once_a_run_however_many_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    written: list[str] = []
    real = Pass.__str__

    def counting(self: Pass) -> str:
        written.append(self.name)
        return real(self)

    monkeypatch.setattr(Pass, "__str__", counting)
    graph = graph_of(SMALL, inputs=("x",), outputs=("y",))
    report = PassManager("identity,strip,prune,strip", fixed_point=True).run(graph)
    assert report.iterations == 2 and len(report.records) == 5
    assert sorted(written) == ["identity", "prune", "strip", "strip"]  # the pipeline's names, written once


def test_a_pass_that_lies_about_changing_fails_with_its_name() -> None:
    @function_pass("liar", register=False)
    def liar(graph: Graph, ctx: PassContext) -> bool:
        """Claims a change it never made."""
        return True

    with pytest.raises(PassError, match=r"pass 'liar' failed after identity: it returned changed=True"):
        PassManager([PassManager("identity").pipeline.passes[0], liar()]).run(graph_of(SMALL, outputs=("y",)))


def test_a_pass_that_breaks_an_invariant_is_caught_after_it_runs() -> None:
    @function_pass("vandal", register=False)
    def vandal(graph: Graph, ctx: PassContext) -> None:
        """Removes a graph output's producer behind the IR's back."""
        graph.nx.remove_node("y")
        graph.mutations += 1

    with pytest.raises(PassError, match="pass 'vandal' failed \\(the first pass\\): graph output y:0 names a node"):
        PassManager([vandal()]).run(graph_of(SMALL, outputs=("y",)))


def test_a_crash_inside_a_pass_is_reported_as_internal() -> None:
    @function_pass("crash", register=False)
    def crash(graph: Graph, ctx: PassContext) -> None:
        """Fails."""
        raise KeyError("boom")

    with pytest.raises(PassError, match="pass 'crash' failed") as caught:
        PassManager([crash()]).run(graph_of(SMALL))
    assert caught.value.user_error is False


def test_what_passes_remember_is_shared_within_a_run_and_gone_after_it_even_a_failed_one() -> None:
    seen: list[object] = []

    @function_pass("remember", register=False)
    def remember(graph: Graph, ctx: PassContext) -> None:
        graph.memo["fact"] = len(graph)

    @function_pass("recall", register=False)
    def recall(graph: Graph, ctx: PassContext) -> None:
        seen.append(graph.memo.get("fact"))

    @function_pass("crash", register=False)
    def crash(graph: Graph, ctx: PassContext) -> None:
        raise KeyError("boom")

    g = graph_of(SMALL)
    PassManager([remember(), recall()]).run(g)
    PassManager([recall()]).run(g)
    assert seen == [5, None] and g.memo == {}
    with pytest.raises(PassError):
        PassManager([remember(), crash()]).run(g)
    assert g.memo == {}


def test_cycles_outside_loops_are_rejected_but_loops_pass() -> None:
    @function_pass("loop-maker", register=False)
    def loop_maker(graph: Graph, ctx: PassContext) -> None:
        """Feeds y back into a."""
        graph.set_input("a", 0, Tensor("y"))

    with pytest.raises(PassError, match="cycle outside a while loop"):
        PassManager([loop_maker()]).run(graph_of(SMALL, outputs=("y",)))
    loop = "x = Placeholder()\ne = Enter(x)\nm = Merge(e, n)\nn = NextIteration(m)\n"
    check_graph(graph_of(loop, outputs=("m",)))  # the back edge through NextIteration is allowed


def test_a_change_that_breaks_the_readers_of_a_touched_node_is_caught_after_that_pass() -> None:
    @function_pass("narrower", register=False)
    def narrower(graph: Graph, ctx: PassContext) -> None:
        """Turns the two-output `u` into a one-output op while `y` still reads `u:1`."""
        graph.set_op("u", "Neg")

    @function_pass("later", register=False)
    def later(graph: Graph, ctx: PassContext) -> None:
        """Never reached."""
        graph.remove("dead")

    graph = graph_of("x = Placeholder()\nu = Unpack(x)\ndead = Neg(x)\ny = AddV2(u:0, u:1)\n", outputs=("y",))
    graph.node("u").attrs["num"].i = 2
    with pytest.raises(PassError, match=r"pass 'narrower' failed \(the first pass\): node 'y' reads u:1"):
        PassManager([narrower(), later()]).run(graph)
    assert "dead" in graph


def test_between_passes_only_touched_nodes_are_checked() -> None:
    graph = graph_of(SMALL, inputs=("x",), outputs=("y",))
    graph.nx.add_edge("x", "a", key=2, port=0)  # a broken slot behind the IR's back: nothing touched it
    graph.mutations += 1  # (a graph unchanged since lifting has its slots by construction)
    check_graph(graph, graph.take_touched())
    with pytest.raises(GraphError, match=r"node 'a' has data inputs in slots \[0, 2\]"):
        check_graph(graph)
    graph.nx.remove_edge("x", "a", key=2)
    graph.set_input("b", 0, Tensor("x"))
    assert graph.take_touched() == {"b"} and graph.take_touched() == set()


def test_after_change_callbacks_see_each_changing_pass() -> None:
    seen: list[tuple[str, int]] = []
    manager = PassManager(
        "strip,identity,prune", after_change=[lambda record, graph: seen.append((record.name, len(graph)))]
    )
    manager.run(graph_of(SMALL, inputs=("x",), outputs=("y",)))
    assert seen == [("identity", 3), ("prune", 2)]


def test_keep_going_rolls_back_a_failing_pass_and_goes_on() -> None:
    @function_pass("half-done", register=False)
    def half_done(graph: Graph, ctx: PassContext) -> None:
        """Removes a node, then crashes."""
        graph.remove("dead")
        raise RuntimeError("oops")

    graph = graph_of(SMALL, inputs=("x",), outputs=("y",))
    report = PassManager([half_done(), *PassManager("identity").pipeline], keep_going=True).run(graph)
    failed, identity = report.records
    assert failed.error is not None and "pass 'half-done' failed (the first pass): oops" in failed.error
    assert not failed.changed and identity.changed
    assert "dead" in graph and "a" not in graph


def test_before_pass_callbacks_announce_every_pass_and_round() -> None:
    seen: list[tuple[str, int]] = []
    manager = PassManager(
        "identity,prune", fixed_point=True, before_pass=[lambda name, rounds: seen.append((name, rounds))]
    )
    manager.run(graph_of(SMALL, inputs=("x",), outputs=("y",)))
    assert seen == [("identity", 1), ("prune", 1), ("identity", 2)]  # prune (idempotent) has seen round 2's graph
