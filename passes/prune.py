"""`prune`: remove every node the graph's outputs do not need.

Contract
- Keeps each node that a declared output or input, or a kept node (`Graph.keep`: a model's initializer, such as
  `init_all_tables`), reaches backwards through data or control edges (inputs stay even when no output reads
  them: the interface does not change). Everything else is removed.
- Loops need no special case: a `Merge` reaches its `NextIteration`, so a live loop keeps its body.
- Stateful nodes that no output depends on go too (a training step, a saver): that is the point of pruning.
- A graph with no declared outputs is left alone rather than emptied.
- Function bodies and the function library are left as they are.
- Cost: in a graph without loops, in proportion to the dead part (peeled off from the nodes nothing reads); with
  loops, one sweep back from the outputs and inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer import Graph, Pass, PassContext
from optimizer.opinfo import LOOP_BACK_OPS


def live_nodes(graph: Graph) -> set[str]:
    """The nodes the declared outputs and inputs and the kept nodes reach backwards, through data and control edges."""
    roots = [tensor.node for tensor in graph.outputs + graph.inputs] + graph.keep
    return graph.reachable(roots, backward=True)


def dead_nodes(graph: Graph) -> list[str]:
    """The nodes `live_nodes` leaves out. In a graph without loops (`NextIteration` closes the only cycles a graph
    may have) those are the nodes with no path to a declared output or input, found by peeling unused nodes off
    from the ones nothing reads: work in proportion to the dead part, not the graph. A dead loop is a cycle that
    peeling never reaches, so a graph with loops takes the sweep of `live_nodes`."""
    if graph.nodes_of(LOOP_BACK_OPS):
        live = live_nodes(graph)
        return [name for name in graph if name not in live]
    dead = [name for name in graph.sinks() if not graph.is_protected(name)]
    readers_left: dict[str, int] = {}  # node -> how many of the nodes it feeds are not dead yet
    for name in dead:  # grows while it is read: a producer goes once the last node it feeds has
        for source in graph.predecessors(name):
            left = readers_left.get(source)
            left = readers_left[source] = (len(graph.successors(source)) if left is None else left) - 1
            if left == 0 and not graph.is_protected(source):
                dead.append(source)
    return dead


@dataclass(frozen=True)
class Prune(Pass):
    """Remove nodes that no declared output or input needs."""

    name = "prune"
    idempotent = True

    def run(self, graph: Graph, ctx: PassContext) -> None:
        if not graph.outputs:
            ctx.logger.info("prune: the graph declares no outputs; nothing pruned")
            return
        dead = dead_nodes(graph)
        if dead and ctx.allow_rewrite():
            graph.remove_nodes(dead)
