"""Random ops in verification: both graphs draw the same numbers, or the outputs that cannot are not compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

import optimizer
from optimizer import Graph, Tensor
from optimizer._tf import tensorflow
from optimizer.cli import main
from optimizer.graph_io import read_graph_def, write_graph_def
from optimizer.protos import GraphDef, NodeDef
from optimizer.random_ops import SEEDED, UNSEEDABLE, UNSEEDED, dependent_outputs, random_state, seed_alike
from optimizer.registry import BUILTIN_PASSES
from optimizer.report import render_verification
from optimizer.tensor import from_numpy
from optimizer.verify import FAILED, NOT_RUN, PASSED, run_graph, session_for, verify, verify_runs

tf = tensorflow()
PIPELINES = [name for name in optimizer.pass_names() if name in BUILTIN_PASSES] + [None]
INPUTS, OUTPUTS = [Tensor("x")], [Tensor("noisy"), Tensor("clean")]


def dropout_model() -> GraphDef:
    """noisy = dropout(relu(x @ W) + b) in training mode (an unseeded RandomUniform), behind identities and a
    constant subexpression; clean = relu(x @ W) + b."""
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [2, 4], name="x")
        weights = tf.constant(np.random.default_rng(1).uniform(-1, 1, (4, 4)).astype(np.float32), name="W")
        hidden = tf.nn.relu(tf.matmul(x, tf.identity(weights)) + tf.constant(0.5) * tf.constant(2.0))
        dropped = tf.compat.v1.nn.dropout(tf.identity(hidden), rate=0.5)
        tf.identity(dropped, name="noisy")
        tf.identity(hidden, name="clean")
    return graph.as_graph_def()


def function_model(body_op: str = "RandomUniform") -> GraphDef:
    """noisy = f(x) where the tf.function f adds a random draw (`body_op`) to x @ W; clean = x @ W."""
    graph = tf.Graph()
    with graph.as_default():
        weights = tf.constant(np.arange(16, dtype=np.float32).reshape(4, 4) / 8, name="W")

        @tf.function
        def f(value: Any) -> Any:
            draw = tf.random.uniform([2, 4]) if body_op == "RandomUniform" else tf.random.normal([2, 4])
            return tf.matmul(value, weights) + draw

        x = tf.compat.v1.placeholder(tf.float32, [2, 4], name="x")
        tf.identity(f(x), name="noisy")
        tf.identity(tf.matmul(x, weights), name="clean")
    return graph.as_graph_def()


def optimized(graph_def: GraphDef, pipeline: str | None) -> GraphDef:
    graph = Graph.from_graph_def(_copy(graph_def), INPUTS, OUTPUTS)
    optimizer.optimize(graph, pipeline)
    return graph.to_graph_def()


def _copy(graph_def: GraphDef) -> GraphDef:
    copy = GraphDef()
    copy.CopyFrom(graph_def)
    return copy


def random_nodes(graph_def: GraphDef) -> list[NodeDef]:
    nodes = list(graph_def.node) + [node for function in graph_def.library.function for node in function.node_def]
    return [node for node in nodes if random_state(node) is not None]


def test_the_models_are_really_random() -> None:
    feeds = {"x:0": np.ones((2, 4), np.float32)}
    for model in (dropout_model(), function_model()):
        first, second = run_graph(model, feeds, ["noisy:0"]), run_graph(model, feeds, ["noisy:0"])
        assert not np.array_equal(first[0], second[0])


@pytest.mark.parametrize("pipeline", PIPELINES, ids=[name or "default" for name in PIPELINES])
def test_dropout_in_training_mode_verifies_under_every_pass_and_the_default_pipeline(pipeline: str | None) -> None:
    original = dropout_model()
    result = verify(original, optimized(original, pipeline), INPUTS, OUTPUTS, samples=2)
    assert result.status == PASSED, result.outputs
    assert [check.name for check in result.outputs] == ["noisy:0", "clean:0"]
    assert result.random_seeded == 1 and result.random_outputs == []
    assert any("seeded 1 random op alike" in note for note in result.notes)


def test_a_random_op_renamed_by_inline_is_matched_and_the_written_graph_keeps_seed_zero() -> None:
    original = function_model()
    candidate = optimized(original, "inline")
    (inlined,) = random_nodes(candidate)
    assert inlined.name.startswith("StatefulPartitionedCall/") and not candidate.library.function
    assert (inlined.attr["seed"].i, inlined.attr["seed2"].i) == (0, 0)  # the pass's output is untouched
    result = verify(original, candidate, INPUTS, OUTPUTS)
    assert result.status == PASSED and result.random_seeded == 1 and result.random_outputs == []
    assert [check.name for check in result.outputs] == ["noisy:0", "clean:0"]
    (still,) = random_nodes(candidate)
    assert (still.attr["seed"].i, still.attr["seed2"].i) == (0, 0)  # verification seeded copies only


def test_a_changed_deterministic_weight_still_fails_beside_a_random_output() -> None:
    original = function_model()
    candidate = optimized(original, "inline")
    (weights,) = [node for node in candidate.node if node.name == "W"]
    changed = np.arange(16, dtype=np.float32).reshape(4, 4) / 8
    changed[0, 0] += 0.01
    weights.attr["value"].tensor.CopyFrom(from_numpy(changed))
    result = verify(original, candidate, INPUTS, OUTPUTS)
    assert result.status == FAILED
    assert {check.name: check.passed for check in result.outputs} == {"noisy:0": False, "clean:0": False}
    only_clean = verify(original, candidate, INPUTS, [Tensor("clean")])
    assert only_clean.status == FAILED


def test_a_random_op_with_no_counterpart_is_not_compared_and_the_rest_is() -> None:
    original = function_model()
    candidate = optimized(original, "inline")
    (inlined,) = random_nodes(candidate)
    old, inlined.name = inlined.name, "unrelated"
    for node in candidate.node:
        node.input[:] = [_renamed(text, old, "unrelated") for text in node.input]
    result = verify(original, candidate, INPUTS, OUTPUTS)
    assert result.status == PASSED and result.random_outputs == ["noisy:0"]
    assert [check.name for check in result.outputs] == ["clean:0"]
    assert any("not compared, random: noisy:0" in note and "unrelated" in note for note in result.notes)
    assert result.to_dict()["random_outputs"] == ["noisy:0"] and result.to_dict()["passed"] is True
    console = Console(record=True, width=200)
    render_verification(result, console)
    assert "outputs match; not compared (random): noisy:0" in console.export_text()
    alone = verify(original, candidate, INPUTS, [Tensor("noisy")])
    assert alone.status == NOT_RUN and alone.skipped is not None and "every output is random" in alone.skipped
    assert not alone.passed and not alone.failed


def _renamed(text: str, old: str, new: str) -> str:
    control, name = ("^", text[1:]) if text.startswith("^") else ("", text)
    node, colon, port = name.partition(":")
    return f"{control}{new}{colon}{port}" if node == old else text


def test_a_candidate_runtime_that_cannot_be_seeded_compares_only_deterministic_outputs() -> None:
    original = dropout_model()
    with session_for(optimized(original, None)) as session:
        result = verify_runs(
            original,
            lambda feeds: list(session.run(["noisy:0", "clean:0"], feed_dict=feeds)),
            "the other runtime",
            INPUTS,
            OUTPUTS,
        )
    assert result.status == PASSED and result.random_seeded == 0 and result.random_outputs == ["noisy:0"]
    assert [check.name for check in result.outputs] == ["clean:0"]


def test_seeded_stateless_and_resource_random_ops_are_left_alone() -> None:
    graph = tf.Graph()
    with graph.as_default():
        seeded = tf.random.uniform([3], seed=7, name="seeded")
        stateless = tf.random.stateless_uniform([3], seed=[1, 2], name="stateless")
        tf.identity(seeded + stateless, name="y")
        tf.raw_ops.NonDeterministicInts(shape=[2], name="entropy")
    graph_def = graph.as_graph_def()
    states = {node.name: random_state(node) for node in graph_def.node}
    assert states["seeded/RandomUniform"] == SEEDED and states["entropy"] == UNSEEDABLE
    assert states["stateless/StatelessRandomUniformV2"] is None
    resource = NodeDef(name="r", op="StatefulUniform")
    assert random_state(resource) is None and random_state(NodeDef(name="u", op="RandomUniform")) == UNSEEDED
    seeding = seed_alike(graph_def, graph_def, ["y:0", "entropy:0"])
    assert seeding.seeded == 0 and seeding.original is graph_def  # nothing to seed: no copy
    assert seeding.random_outputs == ("entropy:0",) and "cannot be seeded" in seeding.reason
    result = verify(graph_def, graph_def, [], [Tensor("y"), Tensor("entropy")])
    assert result.status == PASSED and [check.name for check in result.outputs] == ["y:0"]


def test_the_command_verifies_a_dropout_model_and_writes_it_unseeded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, out = tmp_path / "model.pb", tmp_path / "out.pb"
    write_graph_def(dropout_model(), model)
    code = main([str(model), "-o", str(out), "--inputs", "x", "--outputs", "noisy,clean", "--verify-samples", "2"])
    stdout = capsys.readouterr().out
    assert code == 0 and "outputs match" in stdout and "seeded 1 random op alike" in stdout
    (written,) = [node for node in read_graph_def(out).node if node.op == "RandomUniform"]
    assert (written.attr["seed"].i, written.attr["seed2"].i) == (0, 0)


def test_random_ops_of_a_function_called_twice_are_not_compared_inlined_or_not() -> None:
    """TensorFlow may run both calls on one instantiation of the function, whose one kernel then hands out its
    numbers in whatever order the calls run: those draws cannot be reproduced, seeded or not."""
    graph = tf.Graph()
    with graph.as_default():

        @tf.function
        def f(value: Any) -> Any:
            return value * tf.random.uniform([2, 4], seed=3)

        x = tf.compat.v1.placeholder(tf.float32, [2, 4], name="x")
        tf.identity(f(x), name="first")
        tf.identity(f(x + 1.0), name="second")
        tf.identity(x * 2.0, name="clean")
    original, outputs = graph.as_graph_def(), [Tensor("first"), Tensor("second"), Tensor("clean")]
    inlined = Graph.from_graph_def(_copy(original), INPUTS, outputs)
    optimizer.optimize(inlined, "inline")
    candidate = inlined.to_graph_def()
    assert sorted(node.name for node in random_nodes(candidate)) == [
        "StatefulPartitionedCall/random_uniform/RandomUniform",
        "StatefulPartitionedCall_1/random_uniform/RandomUniform",
    ]
    for other in (original, candidate):
        result = verify(original, other, INPUTS, outputs, samples=2)
        assert result.status == PASSED and result.random_outputs == ["first:0", "second:0"]
        assert [check.name for check in result.outputs] == ["clean:0"]
        assert any("functions called from several places" in note for note in result.notes)


def test_dependent_outputs_follow_data_control_edges_and_function_calls_only_forward() -> None:
    original = function_model()
    (body_random,) = random_nodes(original)
    (function,) = original.library.function
    fetches = ["noisy:0", "clean:0", "x:0"]
    assert dependent_outputs(original, fetches, {(function.signature.name, body_random.name)}) == ["noisy:0"]
    assert dependent_outputs(original, fetches, {("", "W")}) == ["noisy:0", "clean:0"]
    waits = _copy(original)
    (clean,) = [node for node in waits.node if node.name == "clean"]
    clean.input.append("^StatefulPartitionedCall")
    assert dependent_outputs(waits, fetches, {(function.signature.name, body_random.name)}) == ["noisy:0", "clean:0"]
    assert dependent_outputs(original, fetches, set()) == []
