"""Running a GraphDef in TensorFlow exactly as written: import it, open a session with TensorFlow's own graph
rewriting (Grappler, the classic graph optimizer) switched off, and run it on the CPU.

Verification and constant folding both run graphs this way: what they measure is the graph itself, not what
TensorFlow would have made of it, and a big graph is not optimized again on every run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from optimizer._tf import tensorflow
from optimizer.initializers import ModelInit
from optimizer.protos import GraphDef
from optimizer.tf_import import LazyImport, import_whole


def plain_config() -> Any:
    """A session config: CPU only, no Grappler, no classic graph optimizations."""
    tensorflow()
    from tensorflow.core.protobuf import config_pb2

    config = config_pb2.ConfigProto(device_count={"GPU": 0})
    config.graph_options.rewrite_options.disable_meta_optimizer = True
    config.graph_options.optimizer_options.opt_level = config_pb2.OptimizerOptions.L0
    return config


def import_graph(graph_def: GraphDef, nodes: Iterable[str] | None = None) -> Any:
    """A new `tf.Graph` holding `graph_def` (names unprefixed). With `nodes`, only those have Python objects
    (`LazyImport`: a fraction of the time on a big graph): the graph then answers lookups of those names only, and
    nothing may be added to it (a new op could take the name of a node not wrapped)."""
    if nodes is not None:
        imported = LazyImport(graph_def)
        for name in nodes:
            imported.operation(name)
        return imported.graph
    return import_whole(graph_def)


def open_session(graph_def: GraphDef, nodes: Iterable[str] | None = None) -> Any:
    """A plain session over `graph_def` (`nodes` as `import_graph` takes them: then the session may run and feed
    only those); the caller closes it (or uses it as a context manager)."""
    return tensorflow().compat.v1.Session(graph=import_graph(graph_def, nodes), config=plain_config())


@contextmanager
def session_for(graph_def: GraphDef, init: ModelInit | None = None) -> Iterator[Any]:
    """A plain session over `graph_def`, imported once, for running it on several feeds; `init` (a model's
    initializer, such as `graph.init`: `init_all_tables`) is run first."""
    with open_session(graph_def) as session:
        if init is not None:
            init.run(session)
        yield session


def run_graph(
    graph_def: GraphDef, feeds: Mapping[str, np.ndarray], fetches: Sequence[str], init: ModelInit | None = None
) -> list[np.ndarray]:
    """Run `graph_def` once: feed `name:port -> value`, fetch `name:port` tensors (after `init`, if given)."""
    with session_for(graph_def, init) as session:
        return list(session.run(list(fetches), feed_dict=dict(feeds)))
