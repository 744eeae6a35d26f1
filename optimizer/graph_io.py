"""Reading and writing GraphDef files: binary `.pb` or text `.pbtxt`, told apart by content.

Contract
- `read_graph_def` never modifies the file, reads only a regular file (`optimizer.paths`), and raises
  `OptimizerError` (one line naming the file) for an unreadable, empty, truncated, too deeply nested or foreign file
  (TFLite, ONNX, random bytes): a protobuf whose first `PLAUSIBLE_NODES` nodes are not all named and typed is not a
  GraphDef (lifting checks every node).
- `write_graph_def` writes the whole file or nothing: a temporary file in the same folder, then a rename.
  Binary output uses deterministic serialization; a graph over the 2 GiB protobuf limit is refused before writing.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence

from google.protobuf import message, text_format

from optimizer.errors import OptimizerError
from optimizer.ir import Graph
from optimizer.paths import read_regular
from optimizer.protos import PROTOBUF_LIMIT, GraphDef

READ_LIMIT = 4 * PROTOBUF_LIMIT  # the text of a graph at the binary limit
TEXT_EXTENSIONS = (".pbtxt", ".txt", ".prototxt")
FORMATS = ("pb", "pbtxt")
_TEXT_CONTROL_OK = {9, 10, 13}


def _looks_like_text(data: bytes) -> bool:
    """Binary GraphDefs always hold control bytes (field tags such as 0x12); text ones never do."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return not any(byte < 32 and byte not in _TEXT_CONTROL_OK for byte in data[:65536])


def read_graph_def(path: str | os.PathLike[str]) -> GraphDef:
    """Parse the GraphDef in `path`, binary or text, whatever its extension."""
    where = str(path)
    if os.path.isdir(where):
        raise OptimizerError("is a folder, not a GraphDef file", where)
    data = read_regular(where, READ_LIMIT)
    if not data:
        raise OptimizerError("file is empty, not a GraphDef", where)
    if data[4:8] == b"TFL3":
        raise OptimizerError("is a TensorFlow Lite model, not a GraphDef", where)
    graph_def = GraphDef()
    if _looks_like_text(data):
        try:
            text_format.Parse(data.decode("utf-8"), graph_def)
        except text_format.ParseError as error:
            raise OptimizerError(f"not a text GraphDef: {error}", where) from error
        except RecursionError as error:
            raise OptimizerError("not a text GraphDef: it nests messages too deeply to parse", where) from error
    else:
        try:
            graph_def.ParseFromString(data)
        except message.DecodeError as error:
            raise OptimizerError("not a GraphDef: the protobuf is truncated or corrupt", where) from error
    _check_plausible(graph_def, where)
    return graph_def


PLAUSIBLE_NODES = 1000
"""How many nodes `read_graph_def` looks at to tell a GraphDef from another protobuf (lifting checks them all)."""


def _check_plausible(graph_def: GraphDef, where: str) -> None:
    if not graph_def.node:
        raise OptimizerError("holds no nodes: not a GraphDef (another protobuf, such as ONNX or a SavedModel?)", where)
    for index, node in enumerate(graph_def.node[:PLAUSIBLE_NODES]):
        if not node.name or not node.op:
            raise OptimizerError(f"not a GraphDef: node {index} has no name or no op", where)


def output_format(path: str | os.PathLike[str], requested: str | None = None) -> str:
    """`requested` if given, else `pbtxt` for a text extension and `pb` for anything else."""
    if requested:
        if requested not in FORMATS:
            raise OptimizerError(f"unknown format {requested!r}; choose one of {', '.join(FORMATS)}")
        return requested
    return "pbtxt" if str(path).lower().endswith(TEXT_EXTENSIONS) else "pb"


def serialized_chunks(source: GraphDef | Graph, fmt: str, limit: int = PROTOBUF_LIMIT) -> list[bytes]:
    """The bytes of `source` (a GraphDef, or a Graph: lowered) in format `fmt`, in pieces in order; refuse a binary
    graph over `limit` bytes. A Graph is written by `Graph.to_chunks`, without building its GraphDef."""
    if fmt == "pbtxt":
        graph_def = source.to_graph_def() if isinstance(source, Graph) else source
        return [text_format.MessageToString(graph_def).encode("utf-8")]
    if isinstance(source, Graph):
        chunks = source.to_chunks()
        _check_size(sum(map(len, chunks)), limit)
        return chunks
    _check_size(source.ByteSize(), limit)
    return [source.SerializeToString(deterministic=True)]


def _check_size(size: int, limit: int) -> None:
    if size > limit:
        raise OptimizerError(
            f"the graph is {size / 2**30:.2f} GiB, over protobuf's {limit / 2**30:.2f} GiB limit for one message; "
            "keep large weights out of the GraphDef (fold less, or save a SavedModel instead)"
        )


def write_atomic(path: str | os.PathLike[str], data: bytes | Sequence[bytes]) -> None:
    """Write `data` (bytes, or pieces of them in order) to `path` whole or not at all (temporary file in the same
    folder, then rename)."""
    where = str(path)
    folder = os.path.dirname(os.path.abspath(where))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".optimize-", suffix=".tmp", dir=folder)
    except OSError as error:
        raise OptimizerError(f"cannot write: {error.strerror or error}", where) from error
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.writelines([data] if isinstance(data, bytes) else data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, where)
    except OSError as error:
        os.unlink(temporary)
        raise OptimizerError(f"cannot write: {error.strerror or error}", where) from error
    except BaseException:
        os.unlink(temporary)
        raise


def write_graph_def(graph_def: GraphDef | Graph, path: str | os.PathLike[str], fmt: str | None = None) -> int:
    """Write `graph_def` (or a Graph) to `path` atomically; return the number of bytes written."""
    try:
        chunks = serialized_chunks(graph_def, output_format(path, fmt))
    except OptimizerError as error:
        raise OptimizerError(str(error), str(path)) from error
    write_atomic(path, chunks)
    return sum(map(len, chunks))
