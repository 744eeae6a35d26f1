"""`strip`: make a training graph inference-only.

Contract
- Training ops go: variable updates (`Assign*`, `Scatter*`), optimizer steps (`Apply*`, `ResourceApply*`),
  savers (`SaveV2`, `RestoreV2`, `MergeV2Checkpoints`), summaries, initializer checks. Their control edges into
  kept nodes are dropped (an output that waited for a moving-average update no longer does). A training op whose
  data output a kept, non-training node reads is left in place (logged): removing it would change a value.
- Debug checks on the live path: `Assert` and `PrintV2` (no data outputs) go with their control edges;
  `CheckNumerics`, `CheckNumericsV2` and `Print` become `Identity` of their first input (same name, even when
  it holds a graph output), which the `identity` pass then removes.
- A `PlaceholderWithDefault` that is not a declared input takes its default: it becomes a `Const` (same name,
  same value) when the default is a constant, otherwise an `Identity` of the default. This is how the Keras
  learning phase becomes `False` and its training branches dead.
- A `NoOp` with no inputs at all (such as a `group` of updates emptied above, or a group of such groups)
  carries no dependency: its control edges are dropped and, unless it is a graph output, it is removed.
- One run reaches a fixed point: debug checks are rewritten before training ops are collected (a `Print` or
  `Assert` may be the only reader of an update), and emptied `NoOp`s are followed up their control edges.
- What becomes unreachable is left for `prune`.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer import Graph, Pass, PassContext
from optimizer.protos import AttrValue
from optimizer.training import training_nodes

SILENT_CHECKS = frozenset({"Assert", "PrintV2"})
PASS_THROUGH_CHECKS = frozenset({"CheckNumerics", "CheckNumericsV2", "Print"})
_REWRITTEN_HERE = SILENT_CHECKS | PASS_THROUGH_CHECKS | {"PlaceholderWithDefault"}


def _drop_control_edges_from(graph: Graph, name: str) -> None:
    for consumer in graph.control_consumers(name):
        graph.remove_control_input(consumer, name)


def _removable_training_nodes(graph: Graph, ctx: PassContext) -> set[str]:
    """Training ops whose data outputs only other removable training ops read."""
    doomed = set()
    for name in training_nodes(graph):
        if graph.is_protected(name):
            ctx.logger.info("strip: keep %s (%s): it holds a graph input or output", name, graph.op(name))
        else:
            doomed.add(name)
    shrinking = True
    while shrinking:
        shrinking = False
        for name in sorted(doomed):
            reader = next((use.node for _, use in graph.data_consumers(name) if use.node not in doomed), None)
            if reader is not None:
                ctx.logger.info("strip: keep %s (%s): %s reads its value", name, graph.op(name), reader)
                doomed.discard(name)
                shrinking = True
    return doomed


def _to_identity(graph: Graph, name: str) -> None:
    """Turn a pass-through check into `Identity` of its first input (control inputs stay)."""
    node = graph.node(name)
    dtype = AttrValue()
    dtype.CopyFrom(node.attrs["T"])
    graph.set_inputs(name, graph.inputs_of(name)[:1])
    for key in list(node.attrs):
        if key != "T" and not key.startswith("_"):
            graph.del_attr(name, key)
    graph.set_op(name, "Identity")
    graph.set_attr(name, "T", dtype)


def _take_default(graph: Graph, name: str) -> None:
    """Replace a `PlaceholderWithDefault` by its default: a `Const` copy, or an `Identity`."""
    node = graph.node(name)
    (default,) = graph.inputs_of(name)
    source = graph.node(default.node)
    if source.op == "Const" and not graph.control_inputs_of(default.node):
        graph.set_inputs(name, [])
        graph.del_attr(name, "shape")
        graph.set_op(name, "Const")
        graph.set_attr(name, "value", source.attrs["value"])
        graph.set_attr(name, "dtype", source.attrs["dtype"])
        return
    dtype = AttrValue()
    dtype.CopyFrom(node.attrs["dtype"])
    graph.del_attr(name, "dtype")
    graph.del_attr(name, "shape")
    graph.set_op(name, "Identity")
    graph.set_attr(name, "T", dtype)


def _remove_empty_noops(graph: Graph, ctx: PassContext) -> None:
    """Drop the control edges of input-less `NoOp`s and remove them; a `NoOp` that only they fed follows."""
    pending = graph.nodes_of("NoOp")
    pending.reverse()  # pop() then visits them in graph order
    while pending:
        name = pending.pop()
        if name not in graph or graph.predecessors(name):
            continue
        consumers = graph.control_consumers(name)
        protected = graph.is_protected(name)
        if (protected and not consumers) or not ctx.allow_rewrite():
            continue
        _drop_control_edges_from(graph, name)
        if not protected:
            graph.remove(name)
        pending.extend(consumer for consumer in reversed(consumers) if graph.op(consumer) == "NoOp")


@dataclass(frozen=True)
class StripTraining(Pass):
    """Remove training-only ops and debug checks; give defaulted placeholders their defaults."""

    name = "strip"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        # Checks first: a Print's extra inputs or an Assert's data may be the only readers of a training op.
        for node in [graph.node(name) for name in graph.nodes_of(_REWRITTEN_HERE)]:
            if node.op in SILENT_CHECKS:
                if not graph.is_protected(node.name) and ctx.allow_rewrite():
                    _drop_control_edges_from(graph, node.name)
                    graph.remove(node.name)
            elif node.op in PASS_THROUGH_CHECKS:
                if ctx.allow_rewrite():
                    _to_identity(graph, node.name)
            elif node.op == "PlaceholderWithDefault" and not graph.is_graph_input(node.name) and ctx.allow_rewrite():
                _take_default(graph, node.name)
        doomed = _removable_training_nodes(graph, ctx)
        if doomed and ctx.allow_rewrite():
            for name in doomed:
                _drop_control_edges_from(graph, name)
            graph.remove_nodes(doomed)
        _remove_empty_noops(graph, ctx)
