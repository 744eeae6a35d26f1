"""A GraphDef imported into a `tf.Graph` with Python objects made only for the nodes asked about.

`tf.graph_util.import_graph_def` imports at the C level, where TensorFlow's shape functions run, and then wraps
every node in a Python `Operation`: on a Keras application that wrapping is three quarters of the import's time,
and shape inference and constant folding import a graph several times a run. `LazyImport` makes the C-level import
alone and wraps a node when it is first asked for (`operation`, `tensor`). What it answers is what a full import
answers: the same C-level graph, the same shapes and dtypes, and a session over `graph` runs the same nodes.

Contract
- `LazyImport(graph_def)` takes what `import_graph_def` takes and raises what it raises. `import_graph_def` first
  gives an attr written with no value its default, which the C-level import alone refuses: a GraphDef the C-level
  import refuses is imported again the public way, which takes it or raises its own error.
- `names` holds every node of `graph_def`; `operation(name)` and `tensor(t)` return None for a node not in it (and
  `tensor` for a port the node does not have).
- It uses two private hooks of `tf.Graph` (`_c_graph.get()` and `_create_op_from_tf_operation`, as in TensorFlow
  2.21). Where `lazy_supported()` finds them missing, or they fail with an `AttributeError` or `TypeError` (hooks of
  another shape), every node is wrapped at once, the public way: slower, never different.
"""

from __future__ import annotations

import functools
from typing import Any

from optimizer._tf import tensorflow
from optimizer.ir import Tensor
from optimizer.protos import GraphDef


@functools.cache
def lazy_supported() -> bool:
    """Whether this TensorFlow has the private hooks a lazy import needs (see the contract)."""
    tf = tensorflow()
    return hasattr(getattr(tf.Graph(), "_c_graph", None), "get") and hasattr(tf.Graph, "_create_op_from_tf_operation")


def import_whole(graph_def: GraphDef) -> Any:
    """A new `tf.Graph` holding `graph_def` (names unprefixed), every node wrapped: `import_graph_def`, the public
    way."""
    tf = tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        tf.graph_util.import_graph_def(graph_def, name="")
    return graph


class LazyImport:
    """`graph_def` in a new `tf.Graph` (`graph`, names unprefixed); see the module docstring."""

    def __init__(self, graph_def: GraphDef) -> None:
        names = [node.name for node in graph_def.node]
        self.names = frozenset(names)
        self._c_ops: dict[str, Any] = {}
        self._operations: dict[str, Any] = {}
        if lazy_supported():
            self.graph = tensorflow().Graph()
            try:
                self._c_ops = dict(zip(names, _import_c_level(self.graph, graph_def), strict=True))
                return
            except (AttributeError, TypeError, ValueError):
                pass  # hooks of another shape, or a GraphDef only the public import takes (see the contract)
        self.graph = import_whole(graph_def)
        self._operations = {operation.name: operation for operation in self.graph.get_operations()}

    def operation(self, name: str) -> Any | None:
        """The `tf.Operation` of node `name`, made now if not yet; None when the node is not in the import."""
        operation = self._operations.get(name)
        if operation is None:
            c_op = self._c_ops.get(name)
            if c_op is None:
                return None
            operation = self.graph._create_op_from_tf_operation(c_op, compute_device=False)
            self._operations[name] = operation
        return operation

    def tensor(self, tensor: Tensor) -> Any | None:
        """The `tf.Tensor` of `tensor`, or None when its node or port is not in the import."""
        operation = self.operation(tensor.node)
        if operation is None or tensor.port >= len(operation.outputs):
            return None
        return operation.outputs[tensor.port]


def _import_c_level(graph: Any, graph_def: GraphDef) -> list[Any]:
    """Import `graph_def` into `graph`'s C-level graph; return its TF_Operations in `graph_def`'s node order."""
    tensorflow()
    from tensorflow.python.client import pywrap_tf_session as c_api
    from tensorflow.python.framework import errors

    options = c_api.TF_NewImportGraphDefOptions()
    try:
        c_api.TF_ImportGraphDefOptionsSetPrefix(options, "")
        for node in graph_def.node:
            c_api.TF_ImportGraphDefOptionsAddReturnOperation(options, node.name)
        serialized = c_api.TF_NewBufferFromString(graph_def.SerializeToString())
        try:
            with graph._c_graph.get() as c_graph:
                results = c_api.TF_GraphImportGraphDefWithResults(c_graph, serialized, options)
        except errors.InvalidArgumentError as error:
            raise ValueError(str(error)) from error  # as `import_graph_def` raises it
        finally:
            c_api.TF_DeleteBuffer(serialized)
    finally:
        c_api.TF_DeleteImportGraphDefOptions(options)
    try:
        return list(c_api.TF_ImportGraphDefResultsReturnOperations(results))
    finally:
        c_api.TF_DeleteImportGraphDefResults(results)
