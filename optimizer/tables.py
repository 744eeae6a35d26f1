"""Embedding lookup tables: a graph whose tables are filled by its own constants, from one initializer node.

Contract
- `embed_tables(graph)` runs the graph's initializer (`graph.init`, feeds such as asset paths included; for a
  GraphDef without one, its table initializers) in TensorFlow, reads back every `HashTableV2` it filled
  (`LookupTableExportV2`: the keys and values exactly as TensorFlow parsed them, so a text file's key/value
  columns, delimiter, vocab size and dtypes are TensorFlow's own reading of it), and adds per table a
  `LookupTableImportV2` from two `Const`s, all behind one `NoOp`, `init_all_tables` (the TF1 convention).
- That node becomes the graph's initializer (`graph.init`) and is kept (`graph.keep`), so no pass removes it; the
  new graph needs no file. The old initializer, the ops that filled the tables, and what only they read (an
  asset's path) are removed, so that the name `init_all_tables` is free even in a TF1 graph that had one.
- `table_words(graph)` gives the string keys so embedded, so that verification can draw inputs that hit them.
- A graph without tables, or whose initializer fills none, is left alone, and without an initializer: nothing
  keeps the old one. An initializer that fails to run is an OptimizerError (the model cannot run either).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from optimizer import sandbox
from optimizer._tf import tensorflow
from optimizer.errors import OptimizerError
from optimizer.initializers import TABLE_INIT_OPS, TABLE_OPS, ModelInit, table_initializers
from optimizer.ir import Graph, Tensor
from optimizer.patterns import const_value
from optimizer.protos import AttrValue, GraphDef
from optimizer.session import open_session
from optimizer.tensor import const_attrs
from optimizer.tf_errors import describe
from optimizer.variables import VariableValues

logger = logging.getLogger(__name__)

INIT_ALL_TABLES = "init_all_tables"


MAX_WORDS = 10_000


def table_words(graph: Graph) -> list[bytes]:
    """The string keys of the tables `embed_tables` filled (at most `MAX_WORDS`), for verification to look up."""
    words: list[bytes] = []
    for name in graph.nodes_of("LookupTableImportV2"):
        keys = const_value(graph, graph.inputs_of(name)[1])
        if keys is not None and keys.dtype.kind in "SO":
            words.extend(bytes(key) for key in keys.ravel()[: MAX_WORDS - len(words)])
    return words


def _run_init(session: Any, variables: VariableValues | None, init: ModelInit) -> None:
    """Run `init`; if it fails and the graph has variable values, again after restoring them (decoding every
    weight is left for the rare initializer that reads one)."""
    try:
        init.run(session)
    except Exception:
        if variables is None:
            raise
        variables.assign_all(session)
        init.run(session)


def table_contents(graph: Graph, init: ModelInit) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Table node -> (keys, values) of each table `init` fills, read back from TensorFlow after running it (in the
    limited child process, `optimizer.sandbox`, stage `table embedding`)."""
    tables = [
        (name, graph.node(name).attrs["key_dtype"].type, graph.node(name).attrs["value_dtype"].type)
        for name in graph.nodes_of(TABLE_OPS)
    ]
    if not tables:
        return {}
    return dict(
        sandbox.call("table embedding", _table_contents_here, graph.to_graph_def(), tables, init, graph.variables)
    )


def _table_contents_here(
    graph_def: GraphDef, tables: list[tuple[str, int, int]], init: ModelInit, variables: VariableValues | None
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """`table_contents`, in this process: `tables` are (node, key dtype, value dtype)."""
    tf = tensorflow()
    with open_session(graph_def) as session:
        try:
            _run_init(session, variables, init)
        except Exception as error:
            raise OptimizerError(f"the model's initializer fails: {describe(error)}") from error
        exports = {}
        with session.graph.as_default():
            for name, key_dtype, value_dtype in tables:
                handle = session.graph.get_tensor_by_name(f"{name}:0")
                exports[name] = tf.raw_ops.LookupTableExportV2(
                    table_handle=handle, Tkeys=tf.as_dtype(key_dtype), Tvalues=tf.as_dtype(value_dtype)
                )
        contents = {}
        for name, export in exports.items():
            try:
                keys, values = session.run(export)
            except Exception:  # not filled by this initializer: it stays as it was
                logger.debug("table %s: not initialized by %s", name, init.nodes)
                continue
            if len(keys):
                contents[name] = (np.asarray(keys), np.asarray(values))
    return contents


SELF_CONTAINED_OPS = frozenset({"NoOp", "Const", "LookupTableImportV2", "InitializeTableV2", *TABLE_OPS})


def _self_contained(graph: Graph, init: ModelInit) -> bool:
    """Whether `init` fills tables from constants only (what `embed_tables` writes): nothing to embed."""
    if init.feeds or not all(name in graph for name in init.nodes):
        return False
    return all(graph.op(name) in SELF_CONTAINED_OPS for name in graph.reachable(init.nodes, backward=True))


def _remove_old_initializer(graph: Graph, init: ModelInit, tables: set[str]) -> None:
    """Remove `init`, the ops that filled `tables` (and what runs after them, such as a TF1 `init_all_tables`),
    and what only they read: nothing will run them, and they may read files."""
    fills = [
        name
        for name in graph.nodes_of(TABLE_INIT_OPS)
        if any(tensor.node in tables for tensor in graph.inputs_of(name)[:1])
    ]
    seeds = [name for name in init.nodes if name in graph] + fills
    live_roots = [tensor.node for tensor in graph.outputs + graph.inputs] + graph.keep
    live = graph.reachable([name for name in live_roots if name not in init.nodes], backward=True)
    old = graph.reachable([*seeds, *graph.reachable(fills)], backward=True)
    graph.keep = [name for name in graph.keep if name not in init.nodes]
    doomed = {name for name in old if name not in live}
    while True:  # what something else still reads stays (a saver reading a variable the initializer assigns)
        used = {name for name in doomed if not set(graph.successors(name)) <= doomed}
        if not used:
            break
        doomed -= used
    graph.remove_nodes(doomed)


def embed_tables(graph: Graph) -> list[str]:
    """Fill `graph`'s tables from constants behind one initializer node (see the module docstring); return the
    names of the graph's initializer nodes afterwards (empty when it has no table to fill)."""
    init = graph.init or table_initializers(graph)
    if init is None or not graph.nodes_of(TABLE_OPS):
        graph.init = None  # nothing of the old initializer is kept: nothing runs it
        return []
    if _self_contained(graph, init):
        graph.init = init
        graph.keep = [*graph.keep, *init.nodes]
        return list(init.nodes)
    contents = table_contents(graph, init)
    if not contents:
        graph.init = None
        return []
    _remove_old_initializer(graph, init, set(contents))
    imports = []
    for table, (keys, values) in contents.items():
        attrs = graph.node(table).attrs
        key_dtype, value_dtype = attrs["key_dtype"].type, attrs["value_dtype"].type
        key_node = graph.add_node(f"{table}/embedded_keys", "Const", attrs=const_attrs(keys, key_dtype))
        value_node = graph.add_node(f"{table}/embedded_values", "Const", attrs=const_attrs(values, value_dtype))
        imports.append(
            graph.add_node(
                f"{table}/embedded_import",
                "LookupTableImportV2",
                [Tensor(table), Tensor(key_node), Tensor(value_node)],
                attrs={"Tin": AttrValue(type=key_dtype), "Tout": AttrValue(type=value_dtype)},
            )
        )
    initializer = graph.add_node(INIT_ALL_TABLES, "NoOp", control_inputs=imports)
    graph.init = ModelInit((initializer,))
    graph.keep = [*graph.keep, initializer]
    logger.info("tables: %d table(s) filled from constants by %s", len(imports), initializer)
    return [initializer]
