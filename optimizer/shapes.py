"""Static shapes and dtypes of a graph's tensors, from TensorFlow's own shape inference, computed once.

Contract
- `StaticShapes.infer(graph)` imports a copy of the graph into a `tf.Graph` once (TensorFlow's C++ shape functions
  run at import, constant shape inputs such as a `Reshape`'s `shape` included; `LazyImport`, so only the nodes
  asked about get Python objects) and answers per tensor:
  `shape(t)` is a tuple with `None` for an unknown dimension, or None when even the rank is unknown; `dtype(t)` is
  the `DataType` enum, or None.
- Large constants (more than `VALUE_LIMIT` elements) are imported as placeholders of the same dtype and shape, so
  that inference does not copy the weights; no shape function reads so large a value.
- The import runs in this process, and TensorFlow's shape inference evaluates small constant subgraphs on its own
  (the axes of a `Sum` over `Range(Rank(x))` run `x`'s producer). So the ops whose output size depends on their
  input values without bound (`UNBOUNDED_OUTPUT_OPS`: `ParseTensor` of a small string claiming gigabytes, a zlib
  bomb, ...) are imported as placeholders of their output dtype and unknown shape: nothing they would allocate is
  ever computed here, and their shapes, unknown to inference anyway, stay unknown.
- `StaticShapes.of(graph)` is `infer(graph)` remembered in `graph.memo` while the graph does not change (by
  `Graph.mutations`): passes that run one after another on an unchanged graph share one inference.
- `input_shapes` fixes the shapes of placeholders for this inference (`{"x": (1, 224, 224, 3)}`): a dynamic input
  made static enables more rewrites downstream. The graph itself is not changed.
- The answers describe the graph as it was when inferred. A node added later, or removed and added again under the
  same name, is unknown (None); a node rewritten in place keeps its answer, which is right because rewrites keep
  the values, and so the shapes, of the tensors they keep.
- A graph TensorFlow cannot import (an unknown op, a broken function) gives unknown everywhere, never an error.
- `broadcast_keeps_shape(x, c)` says whether `x op c` has exactly `x`'s shape by broadcasting rules.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from optimizer._tf import tensorflow
from optimizer.ir import Graph, Tensor
from optimizer.protos import AttrValue, GraphDef, NodeDef
from optimizer.tensor import element_count
from optimizer.tf_errors import describe
from optimizer.tf_import import LazyImport

log = logging.getLogger(__name__)

Shape = tuple[int | None, ...]
VALUE_LIMIT = 4096
_MEMO = "shapes"  # the key of `StaticShapes.of` in `Graph.memo`
_STRING = 7  # DT_STRING

UNBOUNDED_OUTPUT_OPS = {
    "ParseTensor": "out_type",
    "DecodeRaw": "out_type",
    "DecodePaddedRaw": "out_type",
    "DecodeCompressed": None,
    "DecodeBase64": None,
    "AsString": None,
    "StringFormat": None,
    "StringJoin": None,
    "ReduceJoin": None,
}
"""Single-output ops whose output size depends on input values without bound, and the attr giving their output
dtype (None: a string)."""


def _placeholder_for(node: NodeDef) -> NodeDef | None:
    """A Placeholder of the same name, dtype and shape to import in place of the large Const `node` (its inputs, the
    control ones, are written by the caller), or None for any other node."""
    if node.op != "Const" or element_count(node.attr["value"].tensor) <= VALUE_LIMIT:
        return None
    placeholder = NodeDef(name=node.name, op="Placeholder", device=node.device)
    placeholder.attr["dtype"].CopyFrom(node.attr["dtype"])
    placeholder.attr["shape"].shape.CopyFrom(node.attr["value"].tensor.tensor_shape)
    return placeholder


def _make_opaque(node: NodeDef) -> None:
    """Turn the `UNBOUNDED_OUTPUT_OPS` node `node` into a placeholder of its output dtype (same name and device)."""
    dtype_attr = UNBOUNDED_OUTPUT_OPS[node.op]
    dtype = int(node.attr[dtype_attr].type) if dtype_attr else _STRING
    node.op = "Placeholder"
    del node.input[:]
    node.ClearField("attr")
    node.attr["dtype"].type = dtype


def _set_shape(node: NodeDef, shape: Sequence[int | None]) -> None:
    dims = [-1 if size is None else int(size) for size in shape]
    node.attr["shape"].CopyFrom(AttrValue(shape=tensorflow().TensorShape(dims).as_proto()))


class StaticShapes:
    """Per-tensor static shapes and dtypes of one graph, as TensorFlow infers them."""

    def __init__(self, graph: Graph, imported: LazyImport | None) -> None:
        self._graph = graph
        self._imported = imported
        # The node protos inferred: a name later reused by another node must not answer for it.
        self._protos = {node.name: node.proto for node in graph.nodes()} if imported is not None else {}

    @classmethod
    def infer(cls, graph: Graph, input_shapes: Mapping[str, Sequence[int | None]] | None = None) -> StaticShapes:
        """Infer the shapes of every tensor of `graph` (`input_shapes`: placeholder name -> shape to assume)."""
        graph_def: GraphDef = graph.to_graph_def(stand_in=_placeholder_for)  # weights are never copied
        unbounded = set(graph.nodes_of(UNBOUNDED_OUTPUT_OPS))
        if unbounded:
            for node in graph_def.node:
                if node.name in unbounded:
                    _make_opaque(node)
        overrides = {Tensor.parse(name).node: shape for name, shape in (input_shapes or {}).items()}
        if overrides:
            for node in graph_def.node:
                if node.name in overrides and graph.op(node.name).startswith("Placeholder"):
                    _set_shape(node, overrides[node.name])
        try:
            imported = LazyImport(graph_def)
        except Exception as error:  # any import failure: no shape is known, which only disables rewrites
            log.debug("static shapes unknown: the graph does not import: %s", describe(error))
            return cls(graph, None)
        return cls(graph, imported)

    @classmethod
    def of(cls, graph: Graph) -> StaticShapes:
        """`infer(graph)`, or the same answers again while `graph` has not changed since (see the contract)."""
        remembered = graph.memo.get(_MEMO)
        if remembered is None or remembered[0] != graph.mutations:
            remembered = graph.memo[_MEMO] = (graph.mutations, cls.infer(graph))
        shapes: StaticShapes = remembered[1]
        return shapes

    def _output(self, tensor: Tensor) -> Any | None:
        if self._imported is None or tensor.node not in self._graph:
            return None
        if self._protos.get(tensor.node) is not self._graph.node(tensor.node).proto:
            return None
        return self._imported.tensor(tensor)

    def shape(self, tensor: Tensor) -> Shape | None:
        """The static shape of `tensor` (None for an unknown dimension), or None when its rank is unknown."""
        output = self._output(tensor)
        if output is None or output.shape.rank is None:
            return None
        return tuple(output.shape.as_list())

    def dtype(self, tensor: Tensor) -> int | None:
        """The `DataType` enum of `tensor` (a ref type as its base type), or None when unknown."""
        output = self._output(tensor)
        return None if output is None else int(output.dtype.base_dtype.as_datatype_enum)


def is_fully_defined(shape: Shape | None) -> bool:
    return shape is not None and all(size is not None for size in shape)


def broadcast_keeps_shape(x: Shape | None, c: Sequence[int]) -> bool:
    """True when broadcasting `x` (static, possibly partial) against the fully known shape `c` gives `x`'s shape:
    `c` has no more dimensions than `x`, and each of its dimensions is 1 or equals `x`'s (known) dimension."""
    if not c:
        return True
    if x is None or len(c) > len(x):
        return False
    return all(
        size == 1 or size == x_size for size, x_size in zip(reversed(c), reversed(x[len(x) - len(c) :]), strict=True)
    )
