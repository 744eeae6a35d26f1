"""Calling a frozen GraphDef from TensorFlow 2, without sessions.

`as_function(graph)` wraps a GraphDef (or a Graph) in a `tf.function`-style concrete function whose positional
arguments are the graph's inputs and whose results are its outputs, in the declared order:

    run = optimizer.as_function(optimizer.load("model.pb"))
    probabilities = run(images)           # tf.Tensor in, list of tf.Tensor out

A `.pb` is not a SavedModel: `tf.saved_model.load("model.pb")` fails; this is the way to run one in TF2.
A Graph's initializer (`graph.init`, such as `init_all_tables`, with its feeds) runs on every call before
anything reads a table (`optimizer.initializers.order_after_init`; filling a table again with the same contents
changes nothing), so a function of a graph with lookup tables, and a TFLite model converted from it, fill their
tables themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from optimizer._tf import tensorflow
from optimizer.initializers import ModelInit, order_after_init
from optimizer.ir import Graph, Tensor
from optimizer.protos import GraphDef


def as_function(
    graph: Graph | GraphDef,
    inputs: Sequence[Tensor] | None = None,
    outputs: Sequence[Tensor] | None = None,
    init: ModelInit | None = None,
) -> Any:
    """A concrete function computing `outputs` from `inputs` (default: the Graph's declared interface), after
    `init` (default: the Graph's initializer)."""
    tf = tensorflow()
    if isinstance(graph, Graph):
        init = graph.init if init is None else init
        graph_def = graph.to_graph_def()
        inputs = graph.inputs if inputs is None else inputs
        outputs = graph.outputs if outputs is None else outputs
    else:
        graph_def = graph
    if inputs is None or outputs is None:
        raise ValueError("a GraphDef needs its inputs and outputs named")
    if init is not None:
        ordered = Graph.from_graph_def(GraphDef.FromString(graph_def.SerializeToString()))
        order_after_init(ordered, init)
        graph_def = ordered.to_graph_def()

    def imported() -> None:
        present = {node.name for node in graph_def.node}
        feeds = {name: value for name, value in (init.feeds if init else {}).items() if name.split(":")[0] in present}
        constants = {name: tf.constant(value) for name, value in feeds.items()}
        tf.compat.v1.import_graph_def(graph_def, input_map=constants or None, name="")

    wrapped = tf.compat.v1.wrap_function(imported, [])
    feeds = [wrapped.graph.get_tensor_by_name(str(tensor)) for tensor in inputs]
    pruned = wrapped.prune(feeds, [wrapped.graph.get_tensor_by_name(str(tensor)) for tensor in outputs])
    signature = [
        tf.TensorSpec(feed.shape, feed.dtype, name=_argument_name(tensor))
        for feed, tensor in zip(feeds, inputs, strict=True)
    ]

    def call(*arguments: Any) -> Any:
        return pruned(*arguments)

    return tf.function(call, input_signature=signature).get_concrete_function()


def _argument_name(tensor: Tensor) -> str:
    """A valid argument name from a tensor name (`scope/x:0` -> `scope_x`)."""
    name = "".join(char if char.isalnum() or char == "_" else "_" for char in tensor.node)
    return name if tensor.port == 0 else f"{name}_{tensor.port}"
