"""`passes/inline.py` on functions TensorFlow traces (nested calls, `If` branches) and on the cases its contract
names (polymorphic functions, recursion); golden pairs in `tests/golden/inline/` show the naming and control edges."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from google.protobuf import text_format

import optimizer
from optimizer import Graph, Tensor, get_pass
from optimizer._tf import tensorflow
from optimizer.protos import GraphDef
from optimizer.session import run_graph
from passes.inline import Inline
from tests.hostile import call_chain, fan_out_tree

tf = tensorflow()


def traced(function: Callable[..., Any], *specs: Any) -> tuple[Graph, GraphDef]:
    """The graph of `tf.function(function)` for `specs`, its placeholders in and its results out."""
    concrete = tf.function(function).get_concrete_function(*specs)
    graph_def = concrete.graph.as_graph_def()
    inputs = [Tensor.parse(tensor.name) for tensor in concrete.inputs]
    outputs = [Tensor.parse(tensor.name) for tensor in concrete.outputs]
    original = GraphDef()
    original.CopyFrom(graph_def)
    return Graph.from_graph_def(graph_def, inputs, outputs), original


@tf.function
def square(x: Any) -> Any:
    return x * x


@tf.function
def outer(x: Any) -> Any:
    return square(x) + square(x + 1.0)


def nested(x: Any) -> Any:
    return outer(x) * 2.0


def branchy(x: Any) -> Any:
    return tf.cond(tf.reduce_sum(x) > 0.0, lambda: square(x), lambda: outer(x) - 1.0)


SPEC = tf.TensorSpec([3], tf.float32)
FEED = np.array([1.0, -2.0, 0.5], np.float32)


def outputs_of(graph: Graph, graph_def: GraphDef | None = None) -> list[np.ndarray]:
    names = [str(tensor) for tensor in graph.outputs]
    feeds = {str(graph.inputs[0]): FEED}
    return run_graph(graph_def if graph_def is not None else graph.to_graph_def(), feeds, names)


def test_registry_name() -> None:
    assert get_pass("inline") is Inline
    assert str(Inline(max_depth=3)) == "inline{max-depth=3}"


def test_nested_calls_are_inlined_and_the_library_empties() -> None:
    graph, original = traced(nested, SPEC)
    assert {"PartitionedCall", "StatefulPartitionedCall"} & {node.op for node in graph.nodes()}
    assert len(graph.library.function) == 2
    optimizer.optimize(graph, "inline")
    ops = Counter(node.op for node in graph.nodes())
    assert not ops["PartitionedCall"] and not ops["StatefulPartitionedCall"]
    assert ops["Mul"] == 3 and len(graph.library.function) == 0
    np.testing.assert_array_equal(outputs_of(graph), outputs_of(graph, original))


def test_functional_if_is_kept_and_calls_in_its_branches_are_inlined() -> None:
    graph, original = traced(branchy, SPEC)
    optimizer.optimize(graph, "inline")
    (cond,) = [node for node in graph.nodes() if node.op in ("If", "StatelessIf")]
    assert not {"Switch", "Merge"} & {node.op for node in graph.nodes()}
    for branch in ("then_branch", "else_branch"):
        function = graph.function(cond.attrs[branch].func.name)
        assert function is not None
        assert not {"PartitionedCall", "StatefulPartitionedCall"} & {node.op for node in function.node_def}
    names = {function.signature.name for function in graph.library.function}
    assert not any("square" in name or "outer" in name for name in names), names
    for value in (FEED, -FEED):
        feeds = {str(graph.inputs[0]): value}
        fetches = [str(tensor) for tensor in graph.outputs]
        np.testing.assert_allclose(run_graph(graph.to_graph_def(), feeds, fetches), run_graph(original, feeds, fetches))


def test_a_second_run_changes_nothing() -> None:
    graph, _ = traced(branchy, SPEC)
    optimizer.optimize(graph, "inline")
    assert not optimizer.optimize(graph, "inline").changed


POLYMORPHIC = """
node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }
node {
  name: "call" op: "PartitionedCall" input: "x"
  attr { key: "Tin" value { list { type: DT_FLOAT } } }
  attr { key: "Tout" value { list { type: DT_FLOAT } } }
  attr { key: "f" value { func { name: "negate" attr { key: "T" value { type: DT_FLOAT } } } } }
}
node {
  name: "loop" op: "PartitionedCall" input: "x"
  attr { key: "Tin" value { list { type: DT_FLOAT } } }
  attr { key: "Tout" value { list { type: DT_FLOAT } } }
  attr { key: "f" value { func { name: "forever" } } }
}
library {
  function {
    signature {
      name: "negate" input_arg { name: "a" type_attr: "T" } output_arg { name: "b" type_attr: "T" }
      attr { name: "T" type: "type" }
    }
    node_def { name: "neg" op: "Neg" input: "a" attr { key: "T" value { placeholder: "T" } } }
    ret { key: "b" value: "neg:y:0" }
  }
  function {
    signature { name: "forever" input_arg { name: "a" type: DT_FLOAT } output_arg { name: "b" type: DT_FLOAT } }
    node_def {
      name: "again" op: "PartitionedCall" input: "a"
      attr { key: "Tin" value { list { type: DT_FLOAT } } }
      attr { key: "Tout" value { list { type: DT_FLOAT } } }
      attr { key: "f" value { func { name: "forever" } } }
    }
    ret { key: "b" value: "again:output:0" }
  }
}
"""


def test_polymorphic_and_recursive_functions_stay(caplog: pytest.LogCaptureFixture) -> None:
    graph_def = text_format.Parse(POLYMORPHIC, GraphDef())
    graph = Graph.from_graph_def(graph_def, [Tensor("x")], [Tensor("call"), Tensor("loop")])
    with caplog.at_level("INFO"):
        assert not optimizer.optimize(graph, "inline").changed
    assert graph.op("call") == "PartitionedCall" and graph.op("loop") == "PartitionedCall"
    assert "polymorphic" in caplog.text
    assert "leave loop: forever is recursive" in caplog.text
    assert {function.signature.name for function in graph.library.function} == {"negate", "forever"}


def _chain_graph(depth: int) -> Graph:
    return Graph.from_graph_def(call_chain(depth), [Tensor("x")], [Tensor("out")])


def _run(graph: Graph) -> list[float]:
    return [float(value) for value in run_graph(graph.to_graph_def(), {"x:0": FEED[:2]}, ["out:0"])[0]]


def test_calls_nested_deeper_than_max_depth_stay_in_a_function(caplog: pytest.LogCaptureFixture) -> None:
    graph = _chain_graph(5)
    with caplog.at_level("INFO"):
        optimizer.optimize(graph, "inline{max-depth=3}")
    assert "nest deeper than 3" in caplog.text
    # f0, f1, f2 are inlined into the graph; f3 stays called, with f4 inlined into it
    assert [node.op for node in graph.nodes()].count("Neg") == 3
    assert {function.signature.name for function in graph.library.function} == {"f3"}
    f3 = graph.function("f3")
    assert f3 is not None and [node.op for node in f3.node_def].count("Neg") == 2
    assert _run(graph) == (-FEED[:2]).tolist()


def test_a_deep_chain_is_inlined_whole_in_linear_time() -> None:
    timings = []
    for depth in (500, 2000):
        graph = _chain_graph(depth)
        start = time.perf_counter()
        optimizer.optimize(graph, f"inline{{max-depth={depth}}}")
        timings.append(time.perf_counter() - start)
        assert [node.op for node in graph.nodes()].count("Neg") == depth and not graph.library.function
    assert timings[1] < 8 * timings[0]  # 4 times the depth: about 4 times the time, nothing quadratic


def test_a_fan_out_tree_stops_at_the_node_budget(caplog: pytest.LogCaptureFixture) -> None:
    """Each function calls the next twice: inlined whole, 2^39 copies of the leaf. Only functions whose whole
    expansion fits `max-nodes` are inlined, into the smallest function that does not fit; a second run agrees."""
    graph = Graph.from_graph_def(fan_out_tree(40), [Tensor("x")], [Tensor("out")])
    with caplog.at_level("INFO"):
        optimizer.optimize(graph, "inline{max-nodes=1000}")
    assert "with everything it calls has more than 1000 nodes" in caplog.text
    assert graph.op("out") == "PartitionedCall" and len(graph) == 2
    sizes = {function.signature.name: len(function.node_def) for function in graph.library.function}
    # f<39-j> expands to 2^(j+1) - 1 nodes: f31 to 511, f30 to 1023, so f30 holds two copies of f31 and an add
    assert sizes == {**{f"f{index}": 3 for index in range(30)}, "f30": 2 * 511 + 1}
    assert not optimizer.optimize(graph, "inline{max-nodes=1000}").changed
    assert (
        _run(Graph.from_graph_def(fan_out_tree(12), [Tensor("x")], [Tensor("out")])) == (-(2.0**11) * FEED[:2]).tolist()
    )


def test_the_total_added_by_one_run_is_capped(caplog: pytest.LogCaptureFixture) -> None:
    graph = Graph.from_graph_def(fan_out_tree(12), [Tensor("x")], [Tensor("out")])
    with caplog.at_level("INFO"):
        optimizer.optimize(graph, "inline{max-total=100}")
    assert "would add more than 100 nodes in all" in caplog.text
    assert len(graph) <= 2 + 100
    assert _run(graph) == (-(2.0**11) * FEED[:2]).tolist()
