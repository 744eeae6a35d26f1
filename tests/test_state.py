"""`state_writers`: the nodes that make a second run differ from the first, among those the fetches execute."""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from optimizer.protos import GraphDef
from optimizer.state import state_writers

v1 = tf.compat.v1


def graph_def_of(body: Any) -> GraphDef:
    graph = tf.Graph()
    with graph.as_default():
        body()
    graph_def: GraphDef = graph.as_graph_def()
    return graph_def


def test_counters_ref_and_resource_are_writers_reads_are_not() -> None:
    def body() -> None:
        ref = v1.Variable(0.0, use_resource=False, name="ref")
        resource = v1.Variable(0.0, use_resource=True, name="resource")
        with tf.control_dependencies([v1.assign_add(ref, 1.0, name="bump_ref")]):
            tf.identity(ref.read_value(), name="ref_count")
        with tf.control_dependencies([resource.assign_add(1.0, name="bump_resource")]):
            tf.identity(resource.read_value(), name="resource_count")
        tf.identity(resource.read_value(), name="read_only")
        v1.train.Saver()  # SaveV2 / RestoreV2 / Assign nodes beside the model: not fetched

    graph_def = graph_def_of(body)
    assert state_writers(graph_def, ["ref_count:0"]) == ["bump_ref: AssignAdd"]
    assert state_writers(graph_def, ["resource_count:0"]) == ["bump_resource: AssignAddVariableOp"]
    assert state_writers(graph_def, ["read_only:0"]) == []


def test_a_writer_inside_a_called_function_is_named_with_its_function() -> None:
    def body() -> None:
        counter = v1.Variable(0.0, use_resource=True, name="counter")

        @tf.function(autograph=False)
        def increment() -> Any:
            counter.assign_add(1.0)
            return counter.read_value()

        tf.identity(increment(), name="count")

    writers = state_writers(graph_def_of(body), ["count:0"])
    assert len(writers) == 1 and writers[0].startswith("__inference_increment_")
    assert writers[0].endswith("/AssignAddVariableOp: AssignAddVariableOp")


def test_queues_and_iterators_count_as_writers() -> None:
    def body() -> None:
        queue = tf.queue.FIFOQueue(4, tf.float32, shapes=[[]], name="queue")
        tf.identity(queue.dequeue(name="take"), name="taken")
        tf.identity(queue.size(name="size"), name="how_many")

    graph_def = graph_def_of(body)
    assert state_writers(graph_def, ["taken:0"]) == ["take: QueueDequeueV2"]
    assert state_writers(graph_def, ["how_many:0"]) == []
