"""The function library: lift a `FunctionDef` body into a `Graph`, lower it back, and track who calls whom.

Contract
- `lift(function, signatures)` gives a `FunctionBody`: a `Graph` whose inputs are one `Placeholder` per argument
  (named after the argument, or made unique when a body node has that name) and whose outputs are the returned
  tensors in signature order. Body nodes keep their names and attrs. FunctionDef tensor names
  (`node:output_arg:index`) become flat ports here, once, from TensorFlow's op registry or the called function's
  signature; `lower` spells them back the same way.
- `lower(body, signatures)` writes a `FunctionDef` with the original's attrs, argument attrs and control outputs
  (those naming nodes that are gone are dropped) and the body's current signature: argument types are read from
  the placeholders' `dtype`, so changing an argument's type changes the signature (resource handle data is dropped
  with the resource type). Lifting then lowering gives back an equal FunctionDef.
- Polymorphic functions (type or length attrs in the signature) and bodies that use ops TensorFlow does not know
  cannot be lifted: `lift` raises `NotLiftable` with the reason.
- `called_functions(node, names)` lists the functions a node refers to (its op, or any func-valued attr);
  `function_closure` adds what those call, transitively, and their registered gradients; `referenced_library`
  is that part of a library (what a sub-GraphDef needs to import);
  `referenced_functions(graph)` closes that over function bodies and gradients, from the graph's nodes;
  `drop_unreferenced(graph, candidates)` removes the candidates (and what only they call) that nothing references.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field

from optimizer import opinfo
from optimizer.errors import OptimizerError
from optimizer.ir import Graph, Tensor
from optimizer.protos import FunctionDef, FunctionDefLibrary, GraphDef, NodeDef, OpDef

CALL_OPS = frozenset({"PartitionedCall", "StatefulPartitionedCall"})

Signatures = Mapping[str, OpDef]


class NotLiftable(OptimizerError):
    """A function body that cannot be represented as a Graph (see the module docstring)."""


def signatures_of(graph: Graph) -> dict[str, OpDef]:
    """Function name -> signature, for every function in `graph`'s library."""
    return {function.signature.name: function.signature for function in graph.library.function}


def _arg_count(node: NodeDef, arg: OpDef.ArgDef) -> int | None:
    if arg.number_attr:
        value = node.attr[arg.number_attr]
        return None if value.placeholder else int(value.i)
    if arg.type_list_attr:
        value = node.attr[arg.type_list_attr]
        return None if value.placeholder else len(value.list.type)
    return 1


def output_slots(node: NodeDef, signatures: Signatures) -> list[tuple[str, int]] | None:
    """`(output_arg, index)` of each flat output port of `node`, or None when its op is unknown."""
    definition = opinfo.op_def(node.op)
    if definition is None:
        called = signatures.get(node.op)
        return None if called is None else [(arg.name, 0) for arg in called.output_arg]
    slots: list[tuple[str, int]] = []
    for arg in definition.output_arg:
        count = _arg_count(node, arg)
        if count is None:
            return None
        slots.extend((arg.name, index) for index in range(count))
    return slots


@dataclass
class FunctionBody:
    """A function body as a Graph, with what is needed to write it back."""

    graph: Graph
    args: list[str]
    function: FunctionDef
    signature: OpDef = field(default_factory=OpDef)

    @property
    def name(self) -> str:
        return str(self.function.signature.name)


def lift(function: FunctionDef, signatures: Signatures) -> FunctionBody:
    """The body of `function` as a Graph (see the module docstring)."""
    signature = function.signature
    name = signature.name
    if signature.attr or any(not arg.type for arg in [*signature.input_arg, *signature.output_arg]):
        raise NotLiftable(f"function {name!r} is polymorphic (its signature has type or length attrs)")
    taken = {node.name for node in function.node_def}
    args, arg_node = [], {}
    graph_def = GraphDef()
    for arg in signature.input_arg:
        node_name = arg.name
        while node_name in taken:
            node_name += "_arg"
        taken.add(node_name)
        placeholder = graph_def.node.add(name=node_name, op="Placeholder")
        placeholder.attr["dtype"].type = arg.type
        args.append(node_name)
        arg_node[arg.name] = node_name
    nodes = {node.name: node for node in function.node_def}
    ports: dict[str, dict[tuple[str, int], int]] = {}

    def flat(text: str) -> str:
        if text.startswith("^"):
            return "^" + arg_node.get(text[1:], text[1:])
        parts = text.split(":")
        if len(parts) == 1:
            if text not in arg_node:
                raise NotLiftable(f"function {name!r}: input {text!r} names no argument")
            return arg_node[text]
        if len(parts) != 3 or parts[0] not in nodes:
            raise NotLiftable(f"function {name!r}: cannot read input {text!r}")
        source = parts[0]
        if source not in ports:
            slots = output_slots(nodes[source], signatures)
            if slots is None:
                raise NotLiftable(f"function {name!r}: op {nodes[source].op!r} of {source!r} is unknown")
            ports[source] = {slot: port for port, slot in enumerate(slots)}
        port = ports[source].get((parts[1], int(parts[2])))
        if port is None:
            raise NotLiftable(f"function {name!r}: {source!r} has no output {parts[1]}:{parts[2]}")
        return source if port == 0 else f"{source}:{port}"

    for node in function.node_def:
        copy = graph_def.node.add()
        copy.CopyFrom(node)
        del copy.input[:]
        copy.input.extend(flat(text) for text in node.input)
    outputs = []
    for arg in signature.output_arg:
        if arg.name not in function.ret:
            raise NotLiftable(f"function {name!r} returns nothing for output {arg.name!r}")
        outputs.append(Tensor.parse(flat(function.ret[arg.name])))
    graph = Graph.from_graph_def(graph_def, [Tensor(node) for node in args], outputs)
    own_signature = OpDef()
    own_signature.CopyFrom(signature)
    return FunctionBody(graph, args, function, own_signature)


def lower(body: FunctionBody, signatures: Signatures, name: str | None = None) -> FunctionDef:
    """`body` written back as a FunctionDef (named `name`, or as before)."""
    graph = body.graph
    function = FunctionDef()
    function.CopyFrom(body.function)
    del function.node_def[:]
    function.ret.clear()
    function.control_ret.clear()
    function.signature.CopyFrom(body.signature)
    if name is not None:
        function.signature.name = name
    arg_names: dict[str, str] = {}
    for arg, node_name in zip(function.signature.input_arg, body.args, strict=True):
        dtype = graph.node(node_name).attrs["dtype"].type
        if dtype != arg.type:
            arg.type = dtype
            arg.ClearField("handle_data")
        arg_names[node_name] = arg.name
    slots: dict[str, list[tuple[str, int]]] = {}

    def spell(tensor: Tensor) -> str:
        if tensor.node in arg_names:
            return arg_names[tensor.node]
        if tensor.node not in slots:
            found = output_slots(graph.node(tensor.node).proto, signatures)
            if found is None:
                raise NotLiftable(f"function {body.name!r}: op of {tensor.node!r} is unknown")
            slots[tensor.node] = found
        output, index = slots[tensor.node][tensor.port]
        return f"{tensor.node}:{output}:{index}"

    for node in graph.nodes():
        if node.name in arg_names:
            continue
        out = function.node_def.add()
        out.CopyFrom(node.proto)
        del out.input[:]  # as lifted, or empty: the edges say
        out.input.extend(spell(tensor) for tensor in graph.inputs_of(node.name))
        out.input.extend("^" + source for source in graph.control_inputs_of(node.name) if source not in arg_names)
    for arg, tensor in zip(function.signature.output_arg, graph.outputs, strict=True):
        function.ret[arg.name] = spell(tensor)
    for key, node_name in body.function.control_ret.items():
        if node_name in graph:
            function.control_ret[key] = node_name
    kept = [key for key in function.signature.control_output if key in function.control_ret]
    del function.signature.control_output[:]
    function.signature.control_output.extend(kept)
    return function


def called_functions(node: NodeDef, names: Collection[str]) -> list[str]:
    """The functions of `names` that `node` refers to: its op, and every func-valued attr (lists too)."""
    found = [str(node.op)] if node.op in names else []
    for value in node.attr.values():
        if value.HasField("func"):
            found.append(value.func.name)
        elif value.HasField("list"):
            found.extend(func.name for func in value.list.func)
    return [name for name in found if name in names]


def referenced_functions(graph: Graph, roots: Iterable[NodeDef] | None = None) -> set[str]:
    """The library functions `roots` (default: the graph's nodes) call, transitively, with their gradients."""
    names = {function.signature.name for function in graph.library.function}
    if not names:
        return set()  # an empty library: nothing to look for in the nodes
    nodes = roots if roots is not None else (node.proto for node in graph.nodes())
    return function_closure(graph.library, [name for node in nodes for name in called_functions(node, names)])


def function_closure(library: FunctionDefLibrary, names: Iterable[str]) -> set[str]:
    """`names` (those `library` has) and every function they call, transitively, with their registered gradients."""
    by_name = {function.signature.name: function for function in library.function}
    gradients = {gradient.function_name: gradient.gradient_func for gradient in library.gradient}

    def calls(name: str) -> list[str]:
        called = [called for inner in by_name[name].node_def for called in called_functions(inner, by_name)]
        return called + ([gradients[name]] if name in gradients else [])

    return closure(names, by_name, calls)


def closure(seeds: Iterable[str], known: Collection[str], successors: Callable[[str], Iterable[str]]) -> set[str]:
    """The `seeds` that are `known` and every known name `successors` reaches from them, walked iteratively (a
    deep chain does not recurse)."""
    stack = list(seeds)
    seen: set[str] = set()
    while stack:
        name = stack.pop()
        if name in seen or name not in known:
            continue
        seen.add(name)
        stack.extend(successors(name))
    return seen


def referenced_library(nodes: Iterable[NodeDef], library: FunctionDefLibrary) -> FunctionDefLibrary:
    """The functions of `library` that `nodes` call, directly or through other functions, and their gradients."""
    result = FunctionDefLibrary()
    names = {function.signature.name for function in library.function}
    if not names:
        return result  # an empty library: nothing to look for in the nodes
    seen = function_closure(library, (name for node in nodes for name in called_functions(node, names)))
    result.function.extend(function for function in library.function if function.signature.name in seen)
    result.gradient.extend(gradient for gradient in library.gradient if gradient.function_name in seen)
    return result


def executed_nodes(graph_def: GraphDef, fetches: Iterable[str]) -> tuple[list[NodeDef], FunctionDefLibrary]:
    """What running `fetches` (`name:port`) of `graph_def` may execute: the nodes they reach backwards through data
    and control edges, and the library functions those nodes call (transitively). A saver beside the model is not
    in it."""
    nodes = {node.name: node for node in graph_def.node}
    reached = closure(
        (name.split(":")[0] for name in fetches),
        nodes,
        lambda name: (text.lstrip("^").split(":")[0] for text in nodes[name].input),
    )
    executed = [node for name, node in nodes.items() if name in reached]
    return executed, referenced_library(executed, graph_def.library)


def drop_unreferenced(graph: Graph, candidates: Iterable[str]) -> list[str]:
    """Remove each candidate function, and each function only they call, that nothing references any more."""
    removed = sorted(function_closure(graph.library, candidates) - referenced_functions(graph))
    graph.remove_functions(set(removed))
    return removed
