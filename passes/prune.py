"""`prune`: remove every node the graph's outputs do not need.

Contract
- Keeps each node that a declared output or input reaches backwards through data or control edges (inputs
  stay even when no output reads them: the interface does not change). Everything else is removed.
- Loops need no special case: a `Merge` reaches its `NextIteration`, so a live loop keeps its body.
- Stateful nodes that no output depends on go too (a training step, a saver): that is the point of pruning.
- A graph with no declared outputs is left alone rather than emptied.
- Function bodies and the function library are left as they are.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer import Graph, Pass, PassContext


def live_nodes(graph: Graph) -> set[str]:
    """The nodes the declared outputs and inputs reach backwards, through data and control edges."""
    return graph.reachable((tensor.node for tensor in graph.outputs + graph.inputs), backward=True)


@dataclass(frozen=True)
class Prune(Pass):
    """Remove nodes that no declared output or input needs."""

    name = "prune"
    idempotent = True

    def run(self, graph: Graph, ctx: PassContext) -> None:
        if not graph.outputs:
            ctx.logger.info("prune: the graph declares no outputs; nothing pruned")
            return
        live = live_nodes(graph)
        dead = [name for name in graph if name not in live]
        if dead and ctx.allow_rewrite():
            graph.remove_nodes(dead)
