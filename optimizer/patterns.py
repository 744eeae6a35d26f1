"""Matching and rewriting helpers that rewrite passes share: constant values, output dtypes, forwarding a node to
a tensor, removing what a rewrite left dead, and a topological order.

Contract
- `const_value(graph, tensor)` is the value of a tensor that a `Const` node produces (decoded on demand), else
  None. A `Const` that is a graph input is fed, so it has no constant value; nor has a resource or variant one.
- `evaluate_constant(graph, tensor)` computes, with numpy, a small pure subgraph whose leaves are `Const`s
  (`Identity`, `Rsqrt`, `Sqrt`, `Reciprocal`, `Neg`, `Mul`, `Add`, `AddV2`, `Sub`, `RealDiv`, `Reshape`,
  `Squeeze`) in the dtype TensorFlow would use; it returns the value, the nodes it read, and the control inputs
  those nodes have from outside (which a constant replacing them must keep: they place it in its frame).
  Anything else, a float value over `EVALUATE_LIMIT` elements or a non-float dtype gives None. Rewrites that need
  TensorFlow's exact kernels leave that to the `fold` pass instead.
- `output_dtype(graph, name)` is the dtype attr of output 0 of `name` by its op's registered signature.
- `forward(graph, name, tensor, control)` makes whatever read output 0 of `name` read `tensor`. When `name` holds a
  graph output, has control inputs or control consumers, or `control` is not empty, it becomes an `Identity` of
  `tensor` under its own name instead (its control inputs stay, `control` joins them), so that no name and no
  ordering is lost; the `identity` pass decides later whether that `Identity` can go.
- `remove_dead(graph, seeds)` removes each seed that nothing uses any more, then the producers that became unused
  by that, transitively; never a protected node, a stateful op, a placeholder or a control-flow primitive.
- `topological_order(graph)` orders every node after its data and control inputs, ignoring the edges out of
  `NextIteration` (the back edges of TF1 loops); nodes on a cycle, which no valid graph has, come last.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from optimizer import opinfo
from optimizer.ir import Graph, Tensor
from optimizer.protos import PROTOBUF_LIMIT, AttrValue
from optimizer.tensor import element_count, to_numpy

EVALUATE_LIMIT = 1 << 16


def is_const(graph: Graph, name: str) -> bool:
    """True for a `Const` node whose value is not fed (not a graph input)."""
    return graph.op(name) == "Const" and not graph.is_graph_input(name)


MAX_DECODED_BYTES = PROTOBUF_LIMIT + 1
"""A constant declaring more than this (a hostile shape: 10^12 elements written as one repeated value) is not
decoded: no real weight exceeds protobuf's 2 GiB, and decoding would allocate the whole declared shape."""


def const_value(graph: Graph, tensor: Tensor) -> np.ndarray | None:
    """The value of `tensor` when a (not fed) `Const` node produces it, else None (also for a constant whose
    declared size is over `MAX_DECODED_BYTES`)."""
    if tensor.port != 0 or not is_const(graph, tensor.node):
        return None
    proto = graph.node(tensor.node).attrs["value"].tensor
    if element_count(proto) * 8 > MAX_DECODED_BYTES:
        return None
    try:
        return to_numpy(proto)
    except (KeyError, TypeError, ValueError):  # resource, variant or malformed values have no numpy form
        return None


def const_shape(graph: Graph, tensor: Tensor) -> tuple[int, ...] | None:
    """The shape of a `Const`'s value, read from its proto without decoding it; None if not a Const."""
    if tensor.port != 0 or not is_const(graph, tensor.node):
        return None
    return tuple(int(dim.size) for dim in graph.node(tensor.node).attrs["value"].tensor.tensor_shape.dim)


@dataclass(frozen=True)
class Constant:
    """A value computed from constants: the nodes read, and their control inputs from outside those nodes."""

    value: np.ndarray
    nodes: frozenset[str]
    control_inputs: tuple[str, ...]


_UNARY: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Identity": lambda x: x,
    "Snapshot": lambda x: x,
    "Rsqrt": lambda x: np.asarray(x.dtype.type(1) / np.sqrt(x)),
    "Sqrt": np.sqrt,
    "Reciprocal": lambda x: np.asarray(x.dtype.type(1) / x),
    "Neg": np.negative,
}
_BINARY: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "Mul": np.multiply,
    "Add": np.add,
    "AddV2": np.add,
    "Sub": np.subtract,
    "RealDiv": np.divide,
}


def _squeeze(graph: Graph, name: str, value: np.ndarray) -> np.ndarray:
    dims = tuple(int(dim) for dim in graph.node(name).attrs["squeeze_dims"].list.i)
    return np.squeeze(value, axis=dims or None)


def evaluate_constant(graph: Graph, tensor: Tensor, depth: int = 12) -> Constant | None:
    """The value of `tensor` when a small float subgraph of constants computes it (see the module docstring)."""
    nodes: set[str] = set()
    value = _evaluate(graph, tensor, depth, nodes)
    if value is None:
        return None
    controls = dict.fromkeys(
        source for name in sorted(nodes) for source in graph.control_inputs_of(name) if source not in nodes
    )
    return Constant(value, frozenset(nodes), tuple(controls))


def _evaluate(graph: Graph, tensor: Tensor, depth: int, nodes: set[str]) -> np.ndarray | None:
    name = tensor.node
    if depth < 0 or tensor.port != 0 or graph.is_graph_input(name):
        return None
    op = graph.op(name)
    if op == "Const":
        stored = const_shape(graph, tensor)
        if stored is None or int(np.prod(stored, dtype=np.int64)) > EVALUATE_LIMIT:
            return None
        value = const_value(graph, tensor)
        if value is None or value.dtype.kind != "f":
            return None
        nodes.add(name)
        return value
    inputs = graph.inputs_of(name)
    result: np.ndarray | None = None
    with np.errstate(all="ignore"):
        if op in _UNARY and len(inputs) == 1:
            operand = _evaluate(graph, inputs[0], depth - 1, nodes)
            result = None if operand is None else np.asarray(_UNARY[op](operand))
        elif op in _BINARY and len(inputs) == 2:
            left = _evaluate(graph, inputs[0], depth - 1, nodes)
            right = None if left is None else _evaluate(graph, inputs[1], depth - 1, nodes)
            if left is not None and right is not None and left.dtype == right.dtype:
                result = np.asarray(_BINARY[op](left, right))
        elif op == "Reshape" and len(inputs) == 2:
            operand = _evaluate(graph, inputs[0], depth - 1, nodes)
            shape = const_value(graph, inputs[1])
            if operand is not None and shape is not None and shape.dtype.kind == "i":
                try:
                    result = operand.reshape(tuple(int(size) for size in shape.reshape(-1)))
                except ValueError:
                    result = None
                nodes.add(inputs[1].node)
        elif op == "Squeeze" and len(inputs) == 1:
            operand = _evaluate(graph, inputs[0], depth - 1, nodes)
            try:
                result = None if operand is None else _squeeze(graph, name, operand)
            except ValueError:
                result = None
    if result is None or result.dtype.kind != "f" or result.size > EVALUATE_LIMIT:
        return None
    nodes.add(name)
    return result


def output_dtype(graph: Graph, name: str) -> AttrValue | None:
    """The dtype of output 0 of `name` as an AttrValue (`type` set), from its op's registered signature."""
    node = graph.node(name)
    definition = opinfo.op_def(node.op)
    if definition is None or not definition.output_arg:
        return None
    arg = definition.output_arg[0]
    if arg.type:
        return AttrValue(type=arg.type)
    if arg.type_attr and arg.type_attr in node.attrs:
        return AttrValue(type=node.attrs[arg.type_attr].type)
    return None


def make_identity(graph: Graph, name: str, tensor: Tensor, control: Sequence[str] = ()) -> None:
    """Turn `name` into `Identity(tensor)` in place (same name, device and control inputs, plus `control`)."""
    dtype = output_dtype(graph, name)
    if dtype is None:
        raise ValueError(f"cannot tell the output dtype of {name!r} ({graph.op(name)})")
    graph.set_inputs(name, [tensor])
    for key in list(graph.node(name).attrs):
        graph.del_attr(name, key)
    graph.set_op(name, "Identity")
    graph.set_attr(name, "T", dtype)
    for source in control:
        if source != name:
            graph.add_control_input(name, source)


def forward(graph: Graph, name: str, tensor: Tensor, control: Sequence[str] = ()) -> None:
    """Make the readers of `name:0` read `tensor` (see the module docstring); `name` may be left unused."""
    if graph.is_protected(name) or graph.control_inputs_of(name) or graph.control_consumers(name) or control:
        make_identity(graph, name, tensor, control)
        return
    graph.replace_all_uses(Tensor(name), tensor)


def removable(graph: Graph, name: str) -> bool:
    """True when `name` may be removed once unused: not protected, pure, not a placeholder or control flow."""
    op = graph.op(name)
    return not (
        graph.is_protected(name) or op in opinfo.ARGUMENT_OPS or op in opinfo.CONTROL_FLOW_OPS or opinfo.is_stateful(op)
    )


def remove_dead(graph: Graph, seeds: Iterable[str]) -> int:
    """Remove the seeds that nothing uses, and the producers that become unused by that; return how many went."""
    stack = list(dict.fromkeys(seeds))
    removed = 0
    while stack:
        name = stack.pop()
        if name not in graph or graph.is_used(name) or not removable(graph, name):
            continue
        producers = [tensor.node for tensor in graph.inputs_of(name)] + graph.control_inputs_of(name)
        graph.remove(name)
        removed += 1
        stack.extend(producers)
    return removed


def in_topological_order(graph: Graph, names: Iterable[str], loop_back: set[str]) -> bool:
    """True when every node of `names` comes after its inputs, reads from the `loop_back` nodes aside."""
    seen: set[str] = set()
    for name in names:
        inputs = graph.predecessors(name)
        if not seen.issuperset(inputs) and not all(source in seen or source in loop_back for source in inputs):
            return False
        seen.add(name)
    return True


def topological_order(graph: Graph) -> list[str]:
    """Every node after its inputs (loop back edges ignored), ties broken by graph order."""
    names = list(graph)
    loop_back = set(graph.nodes_of(opinfo.LOOP_BACK_OPS))
    if in_topological_order(graph, names, loop_back):
        return names  # what the heap below would give, in one sweep
    position = {name: index for index, name in enumerate(names)}
    indegree = {name: len(graph.predecessors(name)) for name in names}
    for name in loop_back:
        for target in graph.successors(name):
            indegree[target] -= 1
    ready = [(position[name], name) for name, degree in indegree.items() if degree == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        if name in loop_back:
            continue
        for target in graph.successors(name):
            indegree[target] -= 1
            if indegree[target] == 0:
                heapq.heappush(ready, (position[target], target))
    if len(order) != len(position):
        placed = set(order)
        order.extend(name for name in names if name not in placed)
    return order
