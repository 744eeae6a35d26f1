"""Row-splits inputs are found from the ops that consume them and fed valid splits, so that a ragged model is
verified instead of being rejected by TensorFlow on random integers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer._tf import tensorflow
from optimizer.graph_io import write_graph_def
from optimizer.protos import GraphDef
from optimizer.ragged_inputs import ROWS, make_row_splits, row_splits_inputs
from tests.test_cli import run


def nested_ragged() -> GraphDef:
    """Placeholders a (values), b and c (outer and inner row splits, names that say nothing) -> dense and sums."""
    tf = tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        a = tf.compat.v1.placeholder(tf.float32, [None], name="a")
        b = tf.compat.v1.placeholder(tf.int64, [None], name="b")
        c = tf.compat.v1.placeholder(tf.int64, [None], name="c")
        ragged = tf.RaggedTensor.from_nested_row_splits(a, [b, c])
        tf.identity(ragged.to_tensor(), name="dense")
        tf.identity(tf.reduce_sum(ragged.flat_values), name="total")
    return graph.as_graph_def()


def is_valid_splits(splits: np.ndarray, end: int) -> bool:
    return bool(splits[0] == 0 and splits[-1] == end and np.all(np.diff(splits) >= 0))


def test_splits_are_found_by_the_consuming_ops_arguments_and_made_valid() -> None:
    graph_def = nested_ragged()
    before = graph_def.SerializeToString()
    found = row_splits_inputs(graph_def, ["a:0", "b:0", "c:0"])
    assert found == {"b:0": "c:0", "c:0": "a:0"}
    assert graph_def.SerializeToString() == before  # reading attrs added none
    feeds: dict[str, np.ndarray] = {
        "a:0": np.ones(5, np.float32),
        "b:0": np.array([3], np.int64),
        "c:0": np.array([9], np.int64),
    }
    made = make_row_splits(feeds, found, {"b:0": None, "c:0": None}, seed=1)
    assert len(made["b:0"]) == ROWS + 1 and made["b:0"].dtype == np.int64
    assert is_valid_splits(made["c:0"], 5) and is_valid_splits(made["b:0"], len(made["c:0"]) - 1)
    kept = make_row_splits(feeds, found, {"b:0": None, "c:0": 4}, seed=1, given=["b:0"])
    assert kept["b:0"].tolist() == [3] and len(kept["c:0"]) == 4 and is_valid_splits(kept["c:0"], 5)
    scalar = make_row_splits({**feeds, "a:0": np.float32(1)}, {"c:0": "a:0"}, {}, seed=1)
    assert scalar["c:0"].tolist() == [9]  # a scalar has no length to split: left as drawn
    assert row_splits_inputs(tensorflow().Graph().as_graph_def(), ["x:0"]) == {}


def test_ragged_gathers_params_splits_are_found_and_its_indices_are_not() -> None:
    tf = tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        values = tf.compat.v1.placeholder(tf.float32, [None], name="v")
        splits = tf.compat.v1.placeholder(tf.int64, [None], name="s")
        indices = tf.compat.v1.placeholder(tf.int64, [None], name="i")
        gathered = tf.raw_ops.RaggedGather(
            params_nested_splits=[splits], params_dense_values=values, indices=indices, OUTPUT_RAGGED_RANK=1
        )
        tf.identity(gathered[1], name="y")
    assert row_splits_inputs(graph.as_graph_def(), ["v:0", "s:0", "i:0"]) == {"s:0": "v:0"}


def test_a_tf1_ragged_graph_is_verified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model, out, report = tmp_path / "ragged.pb", tmp_path / "out.pb", tmp_path / "report.json"
    write_graph_def(nested_ragged(), model)
    code, _, stderr = run(capsys, model, "-o", out, "--report-json", report, "--verify-samples", "3")
    assert (code, stderr) == (0, "")
    verification = json.loads(report.read_text())["verification"]
    assert verification["status"] == "passed"
    assert "b:0: row splits of c:0, made valid" in verification["notes"]
    assert "c:0: row splits of a:0, made valid" in verification["notes"]


def test_a_saved_model_with_a_ragged_signature_is_verified(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tf = tensorflow()

    class Model(tf.Module):  # type: ignore[name-defined]
        @tf.function(input_signature=[tf.RaggedTensorSpec([None, None], tf.float32, row_splits_dtype=tf.int64)])
        def serve(self, x: object) -> object:
            return {"sums": tf.reduce_sum(x, axis=1), "dense": x.to_tensor()}  # type: ignore[attr-defined]

    module = Model()
    tf.saved_model.save(module, str(tmp_path / "model"), signatures=module.serve)
    report = tmp_path / "report.json"
    code, _, stderr = run(capsys, tmp_path / "model", "-o", tmp_path / "out.pb", "--report-json", report)
    assert (code, stderr) == (0, "")
    data = json.loads(report.read_text())
    assert data["inputs"] == ["serving_default_x:0", "serving_default_x_1:0"]  # TF flattens it: values, splits
    assert data["verification"]["status"] == "passed"
    assert "serving_default_x_1:0: row splits of serving_default_x:0, made valid" in data["verification"]["notes"]
