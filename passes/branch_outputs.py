"""`branch-outputs`: drop the outputs of functional conditionals (`If`, `Case`) that nothing reads.

Contract
- An `If`/`StatelessIf`/`Case`/`StatelessCase` node of the top-level graph whose output `k` has no data use loses
  output `k`: its branches are replaced by copies (`<branch>_outputs`, made unique) that no longer return it,
  and inside each copy the nodes that only computed it are removed (a body node stays when a remaining result,
  a control output, or a stateful node reaches it backwards). `Tout`, `output_shapes` and `_output_shapes`
  follow, and uses of the outputs after `k` are renumbered.
- What it is for: a TF1 training graph built with control flow v2 returns, from every `If`, the intermediates
  its gradient needs, wrapped in `OptionalFromValue`/`OptionalNone`. Once the gradients are gone nothing reads
  them, but the TFLite converter still meets the `Optional*` ops in the branches and rejects them ("neither a
  custom op nor a flex op").
- Left alone: a node that holds a graph output (its ports are the interface), one whose every output is used,
  one with an output nothing reads only through a control edge (`^cond` waits for the whole call, which still
  runs), branches that cannot be lifted (polymorphic, unknown ops), nodes inside function bodies, and `While`
  (a loop variable is an input as well as an output). The inputs stay as they are. Branch functions that no
  longer have a caller leave the library.
"""

from __future__ import annotations

from dataclasses import dataclass

from optimizer import Graph, Pass, PassContext, Tensor, opinfo
from optimizer.library import NotLiftable, Signatures, drop_unreferenced, lift, lower, signatures_of
from optimizer.protos import AttrValue, FunctionDef

CONDITIONALS = {"If": ("then_branch", "else_branch"), "StatelessIf": ("then_branch", "else_branch")}


def branch_names(graph: Graph, name: str) -> list[str]:
    """The functions a conditional node `name` calls, in attr order (then, else; or the cases)."""
    node = graph.node(name)
    if node.op in opinfo.CASE_OPS:
        return [func.name for func in node.attrs["branches"].list.func]
    return [node.attrs[attr].func.name for attr in CONDITIONALS[node.op]]


def unused_outputs(graph: Graph, name: str) -> list[int]:
    """The output ports of `name` that no node reads."""
    count = len(graph.node(name).attrs["Tout"].list.type)
    used = {use_port for use_port in range(count) if graph.uses(Tensor(name, use_port))}
    return [port for port in range(count) if port not in used]


def without_outputs(function: FunctionDef, dropped: list[int], signatures: Signatures, new_name: str) -> FunctionDef:
    """A copy of `function`, named `new_name`, that no longer returns outputs `dropped`, with the body nodes only
    they needed removed."""
    body = lift(function, signatures)
    keep = [port for port in range(len(body.graph.outputs)) if port not in dropped]
    body.graph.outputs = [body.graph.outputs[port] for port in keep]
    kept_args = [body.signature.output_arg[port] for port in keep]
    del body.signature.output_arg[:]
    body.signature.output_arg.extend(kept_args)
    roots = [tensor.node for tensor in body.graph.outputs]
    roots += [node for node in function.control_ret.values() if node in body.graph]
    roots += [node.name for node in body.graph.nodes() if opinfo.is_stateful(node.op)]
    live = body.graph.reachable(roots, backward=True) | set(body.args)
    body.graph.remove_nodes([node for node in body.graph if node not in live])
    return lower(body, signatures, new_name)


def _unique_function_name(graph: Graph, base: str) -> str:
    taken = {function.signature.name for function in graph.library.function}
    name, suffix = base, 0
    while name in taken:
        suffix += 1
        name = f"{base}_{suffix}"
    return name


def _drop_from_list_attr(graph: Graph, name: str, key: str, dropped: list[int]) -> None:
    attrs = graph.node(name).attrs
    if key not in attrs:
        return
    value = AttrValue()
    value.CopyFrom(attrs[key])
    for field_name in ("type", "shape"):
        items = getattr(value.list, field_name)
        if len(items) > max(dropped):
            for port in sorted(dropped, reverse=True):
                del items[port]
    graph.set_attr(name, key, value)


@dataclass(frozen=True)
class BranchOutputs(Pass):
    """Drop the outputs of `If`/`Case` nodes that nothing reads, from the node and its branch functions."""

    name = "branch-outputs"

    def run(self, graph: Graph, ctx: PassContext) -> None:
        signatures = signatures_of(graph)
        replaced: set[str] = set()
        for node in list(graph.nodes()):
            if node.op not in CONDITIONALS and node.op not in opinfo.CASE_OPS:
                continue
            if graph.is_protected(node.name):
                continue
            dropped = unused_outputs(graph, node.name)
            if not dropped:
                continue
            try:
                copies = self._copies(graph, node.name, dropped, signatures)
            except NotLiftable as error:
                ctx.logger.debug("branch-outputs: keep %s: %s", node.name, error)
                continue
            if not ctx.allow_rewrite():
                break
            replaced.update(branch_names(graph, node.name))
            self._rewrite(graph, node.name, dropped, copies)
            ctx.logger.info("branch-outputs: %s: dropped outputs %s", node.name, dropped)
        drop_unreferenced(graph, replaced)

    @staticmethod
    def _copies(graph: Graph, name: str, dropped: list[int], signatures: Signatures) -> list[FunctionDef]:
        copies = []
        for branch in branch_names(graph, name):
            function = graph.function(branch)
            if function is None:
                raise NotLiftable(f"branch {branch!r} is not in the function library")
            new_name = _unique_function_name(graph, f"{branch}_outputs")
            copies.append(without_outputs(function, dropped, signatures, new_name))
        return copies

    @staticmethod
    def _rewrite(graph: Graph, name: str, dropped: list[int], copies: list[FunctionDef]) -> None:
        node = graph.node(name)
        for copy in copies:
            graph.set_function(copy)
        if node.op in opinfo.CASE_OPS:
            value = AttrValue()
            value.CopyFrom(node.attrs["branches"])
            for func, copy in zip(value.list.func, copies, strict=True):
                func.name = copy.signature.name
            graph.set_attr(name, "branches", value)
        else:
            for attr, copy in zip(CONDITIONALS[node.op], copies, strict=True):
                value = AttrValue()
                value.CopyFrom(node.attrs[attr])
                value.func.name = copy.signature.name
                graph.set_attr(name, attr, value)
        count = len(node.attrs["Tout"].list.type)
        for key in ("Tout", "output_shapes", "_output_shapes"):
            _drop_from_list_attr(graph, name, key, dropped)
        kept = [port for port in range(count) if port not in dropped]
        for new_port, old_port in enumerate(kept):  # increasing order: a target port is free when it is reached
            graph.replace_all_uses(Tensor(name, old_port), Tensor(name, new_port))
