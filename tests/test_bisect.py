"""Bisection finds the first bad pass and rewrite of a pipeline and writes a reproducer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from optimizer import Graph, PassContext, Tensor, function_pass
from optimizer._tf import tensorflow
from optimizer.bisect import bisect
from optimizer.graph_io import read_graph_def
from optimizer.protos import AttrValue
from optimizer.registry import unregister_pass


def chain_of_adds(random: bool = False) -> Graph:
    """y = ((((x + 1) + 2) + 3) + 4) + 5, with identities between; `random`: y = dropout(that) + normal noise,
    both unseeded (a fresh draw in every session)."""
    tf = tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        value = tf.compat.v1.placeholder(tf.float32, [4], name="x")
        for step in range(1, 6):
            value = tf.identity(tf.add(value, float(step), name=f"add{step}"), name=f"id{step}")
        if random:
            value = tf.compat.v1.nn.dropout(value, rate=0.5) + tf.random.normal([4])
        tf.identity(value, name="y")
    return Graph.from_graph_def(graph.as_graph_def(), [Tensor("x")], [Tensor("y")])


@pytest.fixture
def planted() -> Iterator[None]:
    @function_pass("planted")
    def planted_bug(graph: Graph, ctx: PassContext) -> None:
        """Marks every add; its third rewrite turns the add into a subtraction."""
        for node in graph.nodes():
            if node.op != "AddV2" or not ctx.allow_rewrite():
                continue
            graph.set_attr(node.name, "_visited", AttrValue(b=True))
            if ctx.rewrites == 3:
                graph.set_op(node.name, "Sub")

    yield
    unregister_pass("planted")


def test_bisect_names_the_planted_pass_and_its_third_rewrite(planted: None, tmp_path: Path) -> None:
    graph = chain_of_adds()
    before = graph.to_graph_def()
    result = bisect(graph, "identity,planted,prune", reproducer_dir=tmp_path / "repro")
    assert result.found and result.culprit == "planted" and result.rewrite == 3
    assert result.steps_run == ["identity", "planted"]
    assert result.verification is not None
    assert [check.name for check in result.verification.outputs if not check.passed] == ["y:0"]
    assert "first bad pass is 'planted', rewrite 3, after identity" in result.summary()
    assert graph.to_graph_def() == before  # the input graph is left alone
    repro = tmp_path / "repro"
    assert read_graph_def(repro / "model.pb") == before
    assert "Identity" not in {node.op for node in read_graph_def(repro / "before.pb").node if node.name != "y"}
    assert np.load(repro / "x_0.npy").shape == (4,)
    script = (repro / "reproduce.sh").read_text()
    assert "optimize model.pb --passes identity,planted,prune" in script
    assert "optimize before.pb --passes planted" in script and "--max-rewrites 3" in script


def test_bisect_finds_nothing_in_a_sound_pipeline() -> None:
    result = bisect(chain_of_adds(), "strip,identity,prune", rounds=2)
    assert not result.found and len(result.steps_run) == 6
    assert "preserves the outputs" in result.summary()


def test_bisect_blames_the_planted_pass_not_the_first_one_when_outputs_are_random(planted: None) -> None:
    result = bisect(chain_of_adds(random=True), "identity,planted,prune")
    assert result.found and result.culprit == "planted" and result.rewrite == 3
    assert result.steps_run == ["identity", "planted"]
    assert result.verification is not None and result.verification.random_seeded == 2
    assert result.verification is not None
    assert [check.name for check in result.verification.outputs if not check.passed] == ["y:0"]
