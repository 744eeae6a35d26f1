"""`optimizer/initializers.py`: a SavedModel's initializer found as TensorFlow's loader finds it, a GraphDef's
table initializers, and table readers ordered after them."""

from __future__ import annotations

import os

from tensorflow.core.protobuf.meta_graph_pb2 import MetaGraphDef

from optimizer import Graph
from optimizer.initializers import order_after_init, saved_model_init, table_initializers
from optimizer.protos import NodeDef
from tests.passes.build import graph, node


def meta_graph(*, signature: str | None = None, **collections: str) -> MetaGraphDef:
    meta = MetaGraphDef()
    if signature is not None:
        meta.signature_def["__saved_model_init_op"].outputs["__saved_model_init_op"].name = signature
    for key, name in collections.items():
        meta.collection_def[key].node_list.value.append(name)
    asset = meta.asset_file_def.add()
    asset.tensor_info.name = "asset_path:0"
    asset.filename = "vocab.txt"
    return meta


def test_the_init_op_is_found_in_the_loaders_order_with_its_assets_fed() -> None:
    both = meta_graph(signature="NoOp", saved_model_main_op="main")
    init = saved_model_init(both, "/models/m")
    assert init is not None and init.nodes == ("NoOp",)
    assert dict(init.feeds) == {"asset_path:0": os.path.join("/models/m", "assets", "vocab.txt")}
    main = saved_model_init(meta_graph(saved_model_main_op="main", legacy_init_op="legacy"), "/m")
    assert main is not None and main.nodes == ("main",)
    legacy = saved_model_init(meta_graph(legacy_init_op="legacy:0"), "/m")
    assert legacy is not None and legacy.nodes == ("legacy",)
    tables = saved_model_init(meta_graph(table_initializer="init_table"), "/m")
    assert tables is not None and tables.nodes == ("init_table",)
    assert saved_model_init(meta_graph(), "/m") is None


def tables_graph(*extra: NodeDef) -> Graph:
    return graph(
        node("table", "HashTableV2", T=None),
        node("keys", "Const", T=None),
        node("fill", "LookupTableImportV2", "table", "keys", "keys", T=None),
        node("find", "LookupTableFindV2", "table", "keys", "keys", T=None),
        node("alias", "Identity", "table"),
        node("size", "LookupTableSizeV2", "alias", T=None),
        *extra,
    )


def test_a_graph_defs_initializer_is_its_init_all_tables_else_the_ops_that_fill_its_tables() -> None:
    fills = table_initializers(tables_graph())
    assert fills is not None and fills.nodes == ("fill",) and not fills.feeds
    named = table_initializers(tables_graph(node("init_all_tables", "NoOp", "^fill", T=None)))
    assert named is not None and named.nodes == ("init_all_tables",)
    assert table_initializers(graph(node("x", "Const", T=None))) is None


def test_every_table_reader_waits_for_the_initializer() -> None:
    g = tables_graph()
    init = table_initializers(g)
    assert init is not None
    assert order_after_init(g, init) == 2
    assert g.control_inputs_of("find") == ["fill"] and g.control_inputs_of("size") == ["fill"]
    assert g.control_inputs_of("fill") == [] and g.control_inputs_of("alias") == []
