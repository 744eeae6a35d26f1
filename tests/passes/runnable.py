"""Runnable test graphs: build a GraphDef with `tf.compat.v1` in a fresh `tf.Graph`, optimize a copy, and prove
with `optimizer.verify` that every output is unchanged.

    graph_def = build(lambda: tf.raw_ops.Neg(x=placeholder("x", [2, 3]), name="y"))
    graph = optimized(graph_def, "arith", inputs=["x"], outputs=["y"])  # fails the test if outputs differ
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import optimizer
from optimizer import Graph, PassContext, PassManager, Tensor
from optimizer._tf import tensorflow
from optimizer.protos import GraphDef
from optimizer.verify import PASSED, verify

tf = tensorflow()
SEEDS = (0, 1, 2)


def build(body: Callable[[], Any]) -> GraphDef:
    """The GraphDef of whatever `body` creates inside a fresh `tf.Graph`."""
    graph = tf.Graph()
    with graph.as_default():
        body()
    graph_def: GraphDef = graph.as_graph_def()
    return graph_def


def placeholder(name: str, shape: Sequence[int | None] | None, dtype: Any = None) -> Any:
    return tf.compat.v1.placeholder(dtype or tf.float32, shape, name=name)


def constant(value: Any, name: str | None = None, dtype: Any = None) -> Any:
    return tf.constant(np.asarray(value, dtype=np.float32) if dtype is None else value, dtype=dtype, name=name)


def lift(graph_def: GraphDef, inputs: Sequence[str], outputs: Sequence[str]) -> Graph:
    """A Graph of a copy of `graph_def` with the given interface."""
    copy = GraphDef()
    copy.CopyFrom(graph_def)
    return Graph.from_graph_def(copy, [Tensor.parse(name) for name in inputs], [Tensor.parse(name) for name in outputs])


def check_outputs(original: GraphDef, graph: Graph) -> None:
    """Fail unless `graph` computes what `original` computes, on a few seeds."""
    candidate = graph.to_graph_def()
    for seed in SEEDS:
        result = verify(original, candidate, graph.inputs, graph.outputs, seed=seed)
        assert result.skipped is None, result.skipped
        assert result.random_outputs == [], result.notes  # random ops seeded alike: every output compared
        failed = [check for check in result.outputs if not check.passed]
        assert result.status == PASSED and not failed, f"seed {seed}: {failed}"


def optimized(
    graph_def: GraphDef,
    pipeline: str,
    *,
    inputs: Sequence[str],
    outputs: Sequence[str],
    idempotent: bool = True,
    max_rewrites: int | None = None,
) -> Graph:
    """Run `pipeline` over a copy of `graph_def`, check the outputs, and (by default) that a second run changes
    nothing; return the optimized Graph."""
    graph = lift(graph_def, inputs, outputs)
    PassManager(pipeline, context=PassContext(max_rewrites=max_rewrites)).run(graph)
    check_outputs(graph_def, graph)
    if idempotent:
        again = optimizer.optimize(graph, pipeline)
        assert not again.changed, [record for record in again.records if record.changed]
    return graph


def ops(graph: Graph) -> dict[str, int]:
    """Op counts without the zero entries."""
    return {op: count for op, count in graph.op_counts().items() if count}
