"""What a model path holds, and how it becomes a Graph with its interface and its variables' values.

Contract
- Only regular files and folders are read (`optimizer.paths`). The kind is detected from the path: a folder
  holding `saved_model.pb` is a SavedModel (TF1 or TF2); a file ending in `.meta` is a TF1 meta graph, read with
  its checkpoint; anything else is a GraphDef (binary or text), read with a checkpoint when one is given.
- `checkpoint` applies to GraphDefs and meta graphs, `signature` and `tag` to SavedModels; giving one where it
  does not apply is an OptimizerError (it would otherwise be silently ignored).
- A SavedModel declares its interface (the signature's tensor names); the caller (`optimizer.load`) uses it unless
  given names, and otherwise takes the placeholders and the sinks (`optimizer.signature`).
- The initializer is attached as `graph.init` (`optimizer.initializers`): a SavedModel's init op with its asset
  feeds; for a GraphDef or meta graph, the ops that fill its tables.
- Variable values are attached as `graph.variables` (`optimizer.variables.VariableValues`), read lazily; a plain
  GraphDef without a checkpoint gets none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from optimizer.checkpoint import checkpoint_values, resolve_prefix
from optimizer.errors import OptimizerError
from optimizer.graph_io import read_graph_def
from optimizer.initializers import table_initializers
from optimizer.ir import Graph
from optimizer.meta_graph import META_GRAPH_SUFFIX, meta_graph_checkpoint, read_meta_graph
from optimizer.paths import check_readable
from optimizer.saved_model import is_saved_model, read_signature, saved_model_values


def model_kind(path: str | os.PathLike[str]) -> str:
    """`saved_model`, `meta_graph` or `graph_def`."""
    if is_saved_model(path):
        return "saved_model"
    if str(path).endswith(META_GRAPH_SUFFIX) and not os.path.isdir(path):
        return "meta_graph"
    return "graph_def"


@dataclass
class LoadedModel:
    """A loaded graph (variable values attached) and the interface its file declares, if any (a signature)."""

    graph: Graph
    inputs: list[str] | None = None
    outputs: list[str] | None = None


def load_model(
    path: str | os.PathLike[str],
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    signature: str | None = None,
    tag: str | None = None,
) -> LoadedModel:
    """Load the model at `path` (see the module docstring); the caller resolves the interface."""
    where = str(path)
    check_readable(path)
    kind = model_kind(path)
    if kind != "saved_model" and (signature is not None or tag is not None):
        raise OptimizerError("--signature and --tag apply only to SavedModel folders", where)
    if kind == "saved_model":
        if checkpoint is not None:
            raise OptimizerError(
                "a SavedModel brings its own variables; --checkpoint is for GraphDefs and .meta", where
            )
        model = read_signature(path, signature, tag)
        graph = Graph.from_graph_def(model.graph_def)
        graph.variables = saved_model_values(graph, model)
        graph.init = model.init
        return LoadedModel(graph, model.inputs, model.outputs)
    if kind == "meta_graph":
        graph = Graph.from_graph_def(read_meta_graph(path))
        prefix: str | None = meta_graph_checkpoint(path, checkpoint)
    else:
        graph = Graph.from_graph_def(read_graph_def(path))
        prefix = resolve_prefix(checkpoint) if checkpoint is not None else None
    if prefix is not None:
        graph.variables = checkpoint_values(graph, prefix)
    graph.init = table_initializers(graph)
    return LoadedModel(graph)


def model_bytes(path: str | os.PathLike[str]) -> int:
    """The size of a model on disk: the file, or every file in a SavedModel folder."""
    where = str(path)
    if not os.path.isdir(where):
        return os.path.getsize(where)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, names in os.walk(where) for name in names)
