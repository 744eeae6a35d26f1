"""Inlining one call: replace a call node by a copy of the called function's body.

`inline_call` is what the `inline` pass does for each call, and what `fold` does for the taken branch of an
`If`/`Case` whose condition is a constant; the contract of the `inline` pass (`passes/inline.py`) describes it:
body nodes are named `<call>/<node>`, control edges keep their meaning, a protected call keeps its name.
"""

from __future__ import annotations

from optimizer.ir import COLOCATION_ATTR, Graph, Tensor
from optimizer.library import CALL_OPS, FunctionBody, Signatures
from optimizer.protos import AttrValue, NodeDef

_LOCATION = b"loc:@"


def callee(node: NodeDef, signatures: Signatures) -> str | None:
    """The library function a call node calls, or None for a node that is not a call."""
    if node.op in CALL_OPS:
        name = str(node.attr["f"].func.name)
        return name if name in signatures else None
    return str(node.op) if node.op in signatures else None


def _rename_colocation(proto: NodeDef, rename: dict[str, str]) -> None:
    if COLOCATION_ATTR not in proto.attr:
        return
    entries = [entry for entry in proto.attr[COLOCATION_ATTR].list.s]
    kept = []
    for entry in entries:
        if entry.startswith(_LOCATION):
            target = entry[len(_LOCATION) :].decode("utf-8", "replace")
            if target in rename:
                kept.append(_LOCATION + rename[target].encode("utf-8"))
        else:
            kept.append(entry)
    if kept:
        del proto.attr[COLOCATION_ATTR].list.s[:]
        proto.attr[COLOCATION_ATTR].list.s.extend(kept)
    else:
        del proto.attr[COLOCATION_ATTR]


def _result_types(graph: Graph, call: str, body: FunctionBody) -> list[int]:
    node = graph.node(call)
    if "Tout" in node.attrs:
        return list(node.attrs["Tout"].list.type)
    return [arg.type for arg in body.signature.output_arg]


def _keep_as_forward(graph: Graph, call: str, results: list[Tensor], types: list[int], waits: list[str]) -> None:
    """Turn the protected call node into Identity/IdentityN/NoOp of `results` (same name and ports)."""
    node = graph.node(call)
    for source in graph.control_inputs_of(call):
        graph.remove_control_input(call, source)
    graph.set_inputs(call, results)
    for key in [key for key in node.attrs if not key.startswith("_")]:
        graph.del_attr(call, key)
    if not results:
        graph.set_op(call, "NoOp")
    elif len(results) == 1:
        graph.set_op(call, "Identity")
        graph.set_attr(call, "T", AttrValue(type=types[0]))
    else:
        graph.set_op(call, "IdentityN")
        graph.set_attr(call, "T", AttrValue(list=AttrValue.ListValue(type=types)))
    for source in waits:
        graph.add_control_input(call, source)


def inline_call(graph: Graph, call: str, body: FunctionBody, signatures: Signatures) -> list[str]:
    """Replace the call node `call` of `graph` by a copy of `body`; return the names of the calls it brought."""
    node = graph.node(call)
    device = node.device
    data_inputs = graph.inputs_of(call)
    control_inputs = graph.control_inputs_of(call)
    inner = body.graph
    argument = {name: index for index, name in enumerate(body.args)}
    members = [name for name in inner if name not in argument]
    rename: dict[str, str] = {}
    taken: set[str] = set()
    for name in members:
        candidate, suffix = f"{call}/{name}", 0
        while candidate in graph or candidate in taken:
            suffix += 1
            candidate = f"{call}/{name}_{suffix}"
        taken.add(candidate)
        rename[name] = candidate

    def mapped(tensor: Tensor) -> Tensor:
        if tensor.node in argument:
            return data_inputs[argument[tensor.node]]
        return Tensor(rename[tensor.node], tensor.port)

    input_control = None
    if control_inputs:
        input_control = graph.add_node(
            f"{call}/input_control_node", "NoOp", control_inputs=control_inputs, device=device
        )
    for name in members:
        proto = NodeDef()
        proto.CopyFrom(inner.node(name).proto)
        proto.name = rename[name]
        if not proto.device and device:
            proto.device = device
        _rename_colocation(proto, rename)
        graph.add_node_def(proto)
    for name in members:
        reads = inner.inputs_of(name)
        if reads:
            graph.set_inputs(rename[name], [mapped(tensor) for tensor in reads])
        for source in inner.control_inputs_of(name):
            if source in rename:
                graph.add_control_input(rename[name], rename[source])
        if input_control is not None and all(tensor.node in argument for tensor in reads):
            graph.add_control_input(rename[name], input_control)
    results = [mapped(tensor) for tensor in inner.outputs]
    control_outputs = [rename[name] for name in body.function.control_ret.values() if name in rename]
    # `^call` means "after the call's side effects", which are its control outputs (as TensorFlow's own inliner
    # has it for TF2 functions); a call without any waits for its results, which keeps a v1 branch's deadness.
    waits = control_outputs or list(dict.fromkeys(tensor.node for tensor in results))
    types = _result_types(graph, call, body)
    for port, tensor in enumerate(results):
        graph.replace_all_uses(Tensor(call, port), tensor)
    if graph.is_protected(call):
        _keep_as_forward(graph, call, results, types, control_outputs)
    else:
        consumers = graph.control_consumers(call)
        for consumer in consumers:
            graph.remove_control_input(consumer, call)
        graph.remove(call)
        if consumers:
            anchor = graph.add_node(call, "NoOp", control_inputs=waits, device=device)
            for consumer in consumers:
                graph.add_control_input(consumer, anchor)
    return [rename[name] for name in members if callee(inner.node(name).proto, signatures)]
