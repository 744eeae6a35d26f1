"""`identity`: remove forwarding ops (`Identity`, `IdentityN`, `Snapshot`, `StopGradient`, `PreventGradient`).

Contract
- A forwarding node `n` whose output `k` equals its input `k` is removed: each data use of `n:k` reads the
  input instead, and each of `n`'s control inputs is added to every node that consumed `n` (by data or control),
  so that nothing runs earlier than before.
- `n` is kept when:
  1. it holds a graph input or output: its name is the interface (a consumer fetching `y:0` keeps working);
  2. it reads an output of a `Switch`/`RefSwitch` and something has a control edge from it: the `cond/switch_t`
     anchor. A control edge names a node, not a port, so moving it to the `Switch` would make the dependency fire
     on both branches;
  3. it reads a ref tensor (TF1 variable plumbing): the `Identity` is the read that snapshots the value;
  4. it has control inputs and a consumer is a control-flow primitive (`opinfo.CONTROL_FLOW_OPS`: `Switch`,
     `Merge`, `Enter`, `Exit`, `NextIteration`, ...), where a forwarded control edge would change frame or
     dead-ness semantics;
  5. an output `k` of it is read but it has fewer than `k + 1` data inputs (a malformed node, such as an
     `Identity` without input): there is nothing to forward.
- Function bodies are left alone.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer import Graph, Pass, PassContext, Tensor, opinfo

FORWARDING_OPS = frozenset({"Identity", "IdentityN", "Snapshot", "StopGradient", "PreventGradient"})
SWITCH_OPS = opinfo.SWITCH_OPS


def keep_reason(graph: Graph, name: str) -> str | None:
    """Why the forwarding node `name` must stay, or None when it can go."""
    if graph.is_protected(name):
        return "it holds a graph input or output"
    inputs = graph.inputs_of(name)
    if any(port >= len(inputs) for port, _ in graph.data_consumers(name)):
        return "an output that is read has no data input to forward (a malformed node)"
    producers = {tensor.node for tensor in inputs}
    if graph.control_consumers(name) and any(graph.op(node) in SWITCH_OPS for node in producers):
        return "it anchors a control edge to one output of a Switch"
    if any(opinfo.has_ref_output(graph.op(node)) for node in producers):
        return "it reads a ref tensor"
    if graph.control_inputs_of(name):
        consumers = {use.node for _, use in graph.data_consumers(name)} | set(graph.control_consumers(name))
        if any(graph.op(node) in opinfo.CONTROL_FLOW_OPS for node in consumers):
            return "it has control inputs and feeds a control-flow op"
    return None


def _sole_input(graph: Graph, name: str) -> Tensor | None:
    """The input of `name` when it is all `bypass` has to move: one data input and no control edge in or out,
    from a producer without ref outputs, and not the interface (so `keep_reason` is None); else None."""
    edges = graph.edges_into(name)
    if len(edges) != 1 or graph.is_protected(name):
        return None
    ((source, keys),) = edges.items()
    if len(keys) != 1 or 0 not in keys or opinfo.has_ref_output(graph.op(source)):
        return None
    if any(key < 0 for _, key, _ in graph.out_edges(name)):
        return None
    if any(port != 0 for port, _ in graph.data_consumers(name)):  # a malformed node: `keep_reason` decides
        return None
    return Tensor(source, keys[0]["port"])


def bypass(graph: Graph, name: str) -> None:
    """Forward `name`'s outputs to its inputs and its control inputs to its consumers, then remove it.
    Output `k` of `name` must equal its data input `k`."""
    inputs = graph.inputs_of(name)
    control_inputs = graph.control_inputs_of(name)
    control_consumers = graph.control_consumers(name)
    if control_inputs:
        consumers = [use.node for _, use in graph.data_consumers(name)] + control_consumers
        for consumer in dict.fromkeys(consumers):
            for control_source in control_inputs:
                graph.add_control_input(consumer, control_source)
    for port, tensor in enumerate(inputs):
        graph.replace_all_uses(Tensor(name, port), tensor)
    for consumer in control_consumers:
        graph.remove_control_input(consumer, name)
        for tensor in inputs:
            graph.add_control_input(consumer, tensor.node)
    graph.remove(name)


@dataclass(frozen=True)
class RemoveIdentities(Pass):
    """Remove forwarding ops; see the module docstring for the cases that stay."""

    name = "identity"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        for name in graph.nodes_of(FORWARDING_OPS):
            if name not in graph or graph.op(name) not in FORWARDING_OPS:
                continue
            source = _sole_input(graph, name)
            if source is not None:  # the common case, decided without `keep_reason`'s lists
                if not ctx.allow_rewrite():
                    return
                graph.replace_all_uses(Tensor(name), source)
                graph.remove(name)
                continue
            reason = keep_reason(graph, name)
            if reason is not None:
                ctx.logger.debug("identity: keep %s: %s", name, reason)
                continue
            if not ctx.allow_rewrite():
                return
            bypass(graph, name)
