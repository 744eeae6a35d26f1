"""TF1 meta graphs (`.meta`, as `tf.compat.v1.train.Saver` writes them) and the checkpoint that goes with them.

Contract
- `read_meta_graph(path)` parses a binary or text `MetaGraphDef`; a file that is not one (or holds an empty graph)
  is an OptimizerError naming it.
- `meta_graph_checkpoint(path, checkpoint)`: the checkpoint given, else the latest one in the meta graph's folder
  (the folder's `checkpoint` state file), else the one with the meta graph's own prefix
  (`model.ckpt-3.meta` -> `model.ckpt-3`). None found is an error naming the meta graph that says how to give one.
- The graph is the meta graph's `graph_def`, function library included; its inputs and outputs are chosen as for
  any GraphDef (the caller's names, else placeholders and sinks).
"""

from __future__ import annotations

import os

from google.protobuf import message, text_format

from optimizer.checkpoint import latest_checkpoint, resolve_prefix
from optimizer.errors import OptimizerError
from optimizer.graph_io import READ_LIMIT, _looks_like_text
from optimizer.paths import read_regular
from optimizer.protos import GraphDef

META_GRAPH_SUFFIX = ".meta"


def _meta_graph_class() -> type:
    from tensorflow.core.protobuf.meta_graph_pb2 import MetaGraphDef

    return MetaGraphDef


def read_meta_graph(path: str | os.PathLike[str]) -> GraphDef:
    """The `graph_def` of the MetaGraphDef in `path` (binary or text)."""
    where = str(path)
    data = read_regular(where, READ_LIMIT)
    meta_graph = _meta_graph_class()()
    try:
        if _looks_like_text(data):
            text_format.Parse(data.decode("utf-8"), meta_graph)
        else:
            meta_graph.ParseFromString(data)
    except (message.DecodeError, text_format.ParseError, RecursionError) as error:
        raise OptimizerError("not a TF1 meta graph (MetaGraphDef): cannot parse it", where) from error
    if not meta_graph.graph_def.node:
        raise OptimizerError("not a TF1 meta graph: it holds no graph", where)
    graph_def: GraphDef = meta_graph.graph_def
    return graph_def


def meta_graph_checkpoint(path: str | os.PathLike[str], checkpoint: str | os.PathLike[str] | None = None) -> str:
    """The checkpoint prefix to read the meta graph's variables from (see the module docstring)."""
    if checkpoint is not None:
        return resolve_prefix(checkpoint)
    where = str(path)
    folder = os.path.dirname(os.path.abspath(where))
    found = latest_checkpoint(folder)
    if found is None and where.endswith(META_GRAPH_SUFFIX):
        own = where[: -len(META_GRAPH_SUFFIX)]
        found = own if os.path.exists(own + ".index") else None
    if found is None:
        raise OptimizerError(
            "no checkpoint next to this meta graph (no `checkpoint` file, no .index): give one with --checkpoint",
            where,
        )
    return found
