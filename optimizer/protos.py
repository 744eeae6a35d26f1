"""TensorFlow's protobuf classes, imported once with a clear error when TensorFlow is missing."""

from __future__ import annotations

from optimizer._tf import INSTALL_HINT, tensorflow
from optimizer.errors import OptimizerError

tensorflow()
try:
    from tensorflow.core.framework.attr_value_pb2 import AttrValue
    from tensorflow.core.framework.function_pb2 import FunctionDef, FunctionDefLibrary
    from tensorflow.core.framework.graph_pb2 import GraphDef
    from tensorflow.core.framework.node_def_pb2 import NodeDef
    from tensorflow.core.framework.op_def_pb2 import OpDef, OpList
    from tensorflow.core.framework.tensor_pb2 import TensorProto
    from tensorflow.core.framework.tensor_shape_pb2 import TensorShapeProto
    from tensorflow.core.framework.types_pb2 import DataType
except ImportError as error:  # pragma: no cover - depends on the environment
    raise OptimizerError(INSTALL_HINT) from error

PROTOBUF_LIMIT = 2**31 - 1
"""The largest message protobuf serializes or parses (2 GiB less one byte): no GraphDef, and no constant in one,
can be larger."""

__all__ = [
    "PROTOBUF_LIMIT",
    "AttrValue",
    "DataType",
    "FunctionDef",
    "FunctionDefLibrary",
    "GraphDef",
    "NodeDef",
    "OpDef",
    "OpList",
    "TensorProto",
    "TensorShapeProto",
]
