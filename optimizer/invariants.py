"""The IR's invariants, checked by the manager between passes (a lint of the graph).

- every declared input and output names an existing node and a port it has, and every kept node exists;
- each node's data inputs fill slots 0..n-1 and read ports their producers have;
- no cycle except through `NextIteration` (TF1 while loops).
Node names are unique and inputs resolve by construction of the networkx graph. A full check is one sweep over
nodes and edges; a check of the nodes a pass touched costs in proportion to them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from optimizer import opinfo
from optimizer.errors import GraphError
from optimizer.ir import Graph
from optimizer.patterns import in_topological_order


def check_graph(graph: Graph, touched: Iterable[str] | None = None) -> None:
    """Raise GraphError naming the first broken invariant. With `touched` (from `Graph.take_touched`: the nodes
    a pass changed and the readers of those whose op or attrs changed), only the inputs of those nodes are
    checked, and no cycle is looked for (the manager checks the whole graph once after its last pass)."""
    for kind, tensors in (("input", graph.inputs), ("output", graph.outputs)):
        for tensor in tensors:
            if tensor.node not in graph:
                raise GraphError(f"graph {kind} {tensor} names a node that no longer exists")
            count = graph.num_outputs(tensor.node)
            if count is not None and tensor.port >= count:
                raise GraphError(f"graph {kind} {tensor}: node has only {count} output(s)")
    for name in graph.keep:
        if name not in graph:
            raise GraphError(f"kept node {name} (an initializer) no longer exists")
    if touched is None:
        lifted_reads = graph.lifted_port_reads()
        if lifted_reads is None:
            _check_inputs(graph, graph)
            _check_acyclic(graph)
        else:
            _check_lifted_reads(graph, lifted_reads)
        return
    _check_inputs(graph, (name for name in touched if name in graph))


def check_input_counts(graph: Graph) -> None:
    """Raise GraphError for the first node whose data inputs are not as many as its OpDef asks for (a file
    TensorFlow would refuse to import; the passes assume the count, as `AddV2`'s two operands)."""
    for op in graph.op_counts():
        if opinfo.op_def(op) is None:
            continue
        for name in graph.nodes_of(op):
            expected = opinfo.num_inputs(graph.node(name).proto)
            count = len(graph.inputs_of(name))
            if expected is not None and count != expected:
                raise GraphError(f"node {name!r} ({op}) has {count} data input(s), but {op} takes {expected}")


_ELEMENT_BYTES = {1: 4, 2: 8, 3: 4, 4: 1, 5: 2, 6: 1, 8: 8, 9: 8, 10: 1, 14: 2, 17: 2, 18: 16, 19: 2, 22: 4, 23: 8}
"""Bytes per element of the fixed-size DataTypes (float, double, int32, uint8, int16, int8, complex64, int64, bool,
bfloat16, uint16, complex128, half, uint32, uint64)."""


def check_constant_shapes(graph: Graph) -> None:
    """Raise GraphError for the first `Const` whose value declares a negative dimension (TensorFlow refuses such a
    constant; decoding one makes numpy guess sizes, such as terabytes), or whose `tensor_content` does not hold
    exactly the bytes its shape and fixed-size dtype need (TensorFlow cannot parse it)."""
    for name in graph.nodes_of(("Const",)):
        value = graph.node(name).proto.attr.get("value")
        if value is None:
            continue
        dims = [int(dim.size) for dim in value.tensor.tensor_shape.dim]
        if any(size < 0 for size in dims):
            raise GraphError(f"constant {name!r} declares the shape {dims}, with a negative dimension")
        content, width = value.tensor.tensor_content, _ELEMENT_BYTES.get(int(value.tensor.dtype))
        if content and width is not None and not value.tensor.tensor_shape.unknown_rank:
            needed = math.prod(dims) * width
            if len(content) != needed:
                raise GraphError(
                    f"constant {name!r} holds {len(content)} bytes of content where its shape {dims} needs {needed}"
                )


def _check_lifted_reads(graph: Graph, port_reads: list[tuple[str, int, str]]) -> None:
    """The port check of a graph as lifted (see `Graph.lifted_port_reads`): each read above port 0, and the
    reads of port 0 of nodes that have no outputs; without a sweep over every edge."""
    for source, port, reader in port_reads:
        count = graph.num_outputs(source)
        if count is not None and port >= count:
            raise GraphError(f"node {reader!r} reads {source}:{port}, but {source!r} has {count} output(s)")
    for op in graph.op_counts():
        fixed = opinfo.fixed_output_count(op)
        if fixed is not None and fixed > 0:
            continue
        for name in graph.nodes_of(op):
            if fixed is None and graph.num_outputs(name) != 0:
                continue
            readers = [target for target, key, _ in graph.out_edges(name) if key >= 0]
            if readers:
                raise GraphError(f"node {readers[0]!r} reads {name}:0, but {name!r} has 0 output(s)")


def _check_inputs(graph: Graph, names: Iterable[str]) -> None:
    """Data inputs of each of `names` fill slots 0..n-1 and read ports their producers have."""
    fixed: dict[str, int | None] = {}  # op -> `opinfo.fixed_output_count`
    counts: dict[str, int | None] = {}  # producer -> its output count (None: unknown), found once per check
    for name in names:
        slots: list[int] = []
        for source, keys in graph.edges_into(name).items():
            if source in counts:
                count = counts[source]
            else:
                op = graph.op(source)
                if op not in fixed:
                    fixed[op] = opinfo.fixed_output_count(op)
                count = fixed[op]
                if count is None:  # the count depends on the node's attrs, or the op is unknown
                    count = graph.num_outputs(source)
                counts[source] = count
            for key, attrs in keys.items():
                if key < 0:
                    continue
                slots.append(key)
                if count is not None and attrs["port"] >= count:
                    port = attrs["port"]
                    raise GraphError(f"node {name!r} reads {source}:{port}, but {source!r} has {count} output(s)")
        if slots and (max(slots) != len(slots) - 1 or len(set(slots)) != len(slots)):
            raise GraphError(f"node {name!r} has data inputs in slots {sorted(slots)}, not 0..{len(slots) - 1}")


def _check_acyclic(graph: Graph) -> None:
    """Kahn's algorithm over every edge except those leaving a loop's back edge, unless the graph's own order
    already puts every node after its inputs."""
    loop_back = set(graph.nodes_of(opinfo.LOOP_BACK_OPS))
    if in_topological_order(graph, graph, loop_back):
        return
    indegree = {name: len(graph.predecessors(name)) for name in graph}
    for name in loop_back:
        for target in graph.successors(name):
            indegree[target] -= 1
    ready = [name for name, degree in indegree.items() if degree == 0]
    seen = 0
    while ready:
        name = ready.pop()
        seen += 1
        if name in loop_back:
            continue
        for target in graph.successors(name):
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    if seen != len(indegree):
        stuck = sorted(name for name, degree in indegree.items() if degree > 0)
        raise GraphError(f"the graph has a cycle outside a while loop, through {', '.join(stuck[:5])}")
