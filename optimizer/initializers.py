"""A model's initializer: what must run once, before its outputs, as TensorFlow's loaders run it.

Contract
- `ModelInit` is the nodes to run (operations, fetched by name) and the feeds they need: asset tensors
  (`name:port`) fed the path of their file, as `tf.compat.v1.saved_model.load` feeds them.
- A SavedModel's initializer is found as TensorFlow's loader finds it (`loader_impl.get_init_op`): the
  `__saved_model_init_op` signature's output (TF2), else the `saved_model_main_op` collection, else
  `legacy_init_op` (TF1 `Builder`'s `main_op` / `legacy_init_op`), else the `table_initializer` collection (what
  `tf.compat.v1.tables_initializer()` runs). Its assets are the meta graph's `asset_file_def`: each maps a tensor
  to a file name under the SavedModel's `assets/` folder (`loader_impl._get_asset_tensors`).
- A plain GraphDef declares no initializer; its table initializers (the ops that fill a `HashTableV2`) are its
  initializer, with whatever file names they hold.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optimizer.ir import Graph, Tensor

INIT_OP_SIGNATURE = "__saved_model_init_op"
INIT_COLLECTIONS = ("saved_model_main_op", "legacy_init_op", "table_initializer")
TABLE_OPS = frozenset({"HashTableV2"})
"""Tables whose contents an initializer fixes once (a mutable table is state the graph itself writes)."""
TABLE_INIT_OPS = frozenset({"InitializeTableV2", "InitializeTableFromTextFileV2", "LookupTableImportV2"})


@dataclass(frozen=True)
class ModelInit:
    """Nodes to run once before the outputs, with `feeds` (tensor name -> value, such as an asset's path)."""

    nodes: tuple[str, ...]
    feeds: Mapping[str, Any] = field(default_factory=dict)

    def run(self, session: Any) -> None:
        """Run the initializer in `session` (a `tf.compat.v1.Session` over the graph)."""
        session.run(list(self.nodes), feed_dict=dict(self.feeds))

    def session_nodes(self) -> set[str]:
        """The nodes a session must wrap to run it (see `optimizer.session.import_graph`)."""
        return {*self.nodes, *(Tensor.parse(name).node for name in self.feeds)}


def saved_model_init(meta_graph: Any, folder: str) -> ModelInit | None:
    """The initializer of a SavedModel's meta graph (see the module docstring), or None when it has none."""
    nodes: list[str] = []
    signature = meta_graph.signature_def.get(INIT_OP_SIGNATURE)
    if signature is not None:
        nodes = [Tensor.parse(info.name).node for info in signature.outputs.values() if info.name]
    for key in INIT_COLLECTIONS:
        if nodes:
            break
        if key in meta_graph.collection_def:
            nodes = [Tensor.parse(name).node for name in meta_graph.collection_def[key].node_list.value]
    if not nodes:
        return None
    assets = os.path.join(folder, "assets")
    feeds = {
        asset.tensor_info.name: os.path.join(assets, asset.filename)
        for asset in meta_graph.asset_file_def
        if asset.tensor_info.name
    }
    return ModelInit(tuple(dict.fromkeys(nodes)), feeds)


def table_initializers(graph: Graph) -> ModelInit | None:
    """The ops that fill `graph`'s tables, as the initializer of a GraphDef that declares none (None if none):
    its `init_all_tables` NoOp when it has one (what `optimizer.tables` writes), else the ops themselves."""
    if "init_all_tables" in graph and graph.op("init_all_tables") == "NoOp":
        return ModelInit(("init_all_tables",))
    tables = set(graph.nodes_of(TABLE_OPS))
    fillers = [
        name
        for name in graph.nodes_of(TABLE_INIT_OPS)
        if any(tensor.node in tables for tensor in graph.inputs_of(name)[:1])
    ]
    return ModelInit(tuple(fillers)) if fillers else None


def order_after_init(graph: Graph, init: ModelInit) -> int:
    """Give every node outside `init` that reads a table (directly or through `Identity`s) a control input from
    each of `init`'s nodes, so that a runtime that runs everything in one go (a function, a TFLite model, which
    orders ops by their dependencies alone) fills the tables before looking them up. Returns the edges added."""
    nodes = [name for name in init.nodes if name in graph]
    before = graph.reachable(nodes, backward=True)
    handles = list(graph.nodes_of(TABLE_OPS))
    added = 0
    while handles:
        for reader in list(graph.successors(handles.pop())):
            if reader in before:
                continue
            if graph.op(reader) == "Identity":
                handles.append(reader)
                continue
            added += sum(graph.add_control_input(reader, name) for name in nodes)
    return added
