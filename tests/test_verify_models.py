"""Verification of models with variables, through the command line: every model kind verifies under every
pipeline (the candidate runs with the same restored values as the original), and a graph that writes state is
compared call by call, so that a lost update fails."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimizer.cli import main
from optimizer.graph_io import read_graph_def
from optimizer.protos import GraphDef
from optimizer.variables import variable_leftovers
from tests.fixture_models import Models

PIPELINES: dict[str, str | None] = {
    "no pass": "",
    "strip": "strip",
    "strip+fold": "strip,fold",
    "identity+prune": "identity,prune",
    "default": None,
}
KINDS = ("tf2_saved_model", "tf1_saved_model", "meta_graph", "graph_def+checkpoint")


@pytest.fixture(scope="module")
def counter_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TF2 SavedModel (tf.Module): `serving_default` computes x @ w + b; `incr_counter` adds 1 to a counter and
    returns it (TF Serving's `saved_model_half_plus_two_counter`); `noisy` draws noise seeded by a state it then
    advances (Keras 3 dropout in training mode)."""
    import tensorflow as tf

    class Counter(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(np.arange(12, dtype=np.float32).reshape(4, 3) / 10)
            self.b = tf.Variable([0.5, 1.0, 2.0])
            self.counter = tf.Variable(0.0)
            self.state = tf.Variable(tf.constant(7, tf.int64))

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32)])
        def predict(self, x: Any) -> dict[str, Any]:
            return {"y": tf.matmul(x, self.w) + self.b}

        @tf.function(input_signature=[])
        def incr(self) -> dict[str, Any]:
            self.counter.assign_add(1.0)
            return {"count": self.counter.read_value()}

        @tf.function(input_signature=[tf.TensorSpec([2, 4], tf.float32)])
        def noisy(self, x: Any) -> dict[str, Any]:
            """A Keras 3 SeedGenerator: read the state into a stateless draw's seed, then advance it."""
            state = self.state.read_value()
            noise = tf.random.stateless_uniform([2, 4], seed=tf.stack([state, tf.constant(0, tf.int64)]))
            self.state.assign_add(tf.constant(1, tf.int64))
            return {"y": x + noise}

    module = Counter()
    folder = tmp_path_factory.mktemp("counter") / "saved_model"
    signatures = {"serving_default": module.predict, "incr_counter": module.incr, "noisy": module.noisy}
    tf.saved_model.save(module, str(folder), signatures=signatures)
    return folder


def run(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def model_arguments(kind: str, tf1_models: Models, counter_model: Path) -> list[Any]:
    bn = tf1_models["bn_cond_v1"]
    arguments: dict[str, list[Any]] = {
        "tf2_saved_model": [counter_model],
        "tf1_saved_model": [tf1_models["tf1_saved_model"].path("saved_model")],
        "meta_graph": [bn.path("meta_graph"), "--outputs", "probabilities"],
        "graph_def+checkpoint": [
            bn.path("graph_def"),
            "--checkpoint",
            bn.path("checkpoint"),
            "--outputs",
            "probabilities",
        ],
    }
    return arguments[kind]


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("kind", KINDS)
def test_every_pipeline_verifies_on_every_model_kind(
    kind: str, pipeline: str, tf1_models: Models, counter_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, report = tmp_path / "out.pb", tmp_path / "report.json"
    passes = PIPELINES[pipeline]
    chosen = [] if passes is None else ["--passes", passes]
    code, _, stderr = run(
        capsys, *model_arguments(kind, tf1_models, counter_model), "-o", out, "--report-json", report, *chosen
    )
    assert (code, stderr) == (0, "")
    verification = json.loads(report.read_text())["verification"]
    assert (verification["status"], verification["passed"]) == ("passed", True)
    assert verification["outputs"] and all(check["passed"] for check in verification["outputs"])
    leftovers = variable_leftovers(read_graph_def(out))
    assert bool(leftovers) == (passes is not None), leftovers  # only the default pipeline freezes
    # the TF1 models' batch-norm updates in a training branch write state: both graphs ran twice, every call compared
    assert verification["calls"] == (1 if kind == "tf2_saved_model" else 2)


def test_a_signature_that_updates_and_returns_a_variable_is_not_frozen(
    counter_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.pb"
    code, stdout, stderr = run(capsys, counter_model, "--signature", "incr_counter", "-o", out)
    assert code == 2 and stdout == "" and not out.exists()
    assert stderr.count("\n") == 1 and stderr.startswith(f"optimize: error: {counter_model}: pass 'freeze' failed")
    assert "(counter/.ATTRIBUTES/VARIABLE_VALUE) with AssignAddVariableOp" in stderr
    assert "declare --outputs that do not depend on the update, or keep the variable" in stderr


def test_a_stateful_signature_kept_as_variables_verifies_call_by_call(
    counter_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, report = tmp_path / "out.pb", tmp_path / "report.json"
    code, _, _ = run(
        capsys, counter_model, "--signature", "incr_counter", "-o", out, "--passes", "", "--report-json", report
    )
    verification = json.loads(report.read_text())["verification"]
    assert (code, verification["status"], verification["calls"]) == (0, "passed", 2)
    assert "AssignAddVariableOp" in verification["notes"][0] and "every call was compared" in verification["notes"][0]


def test_a_candidate_that_lost_the_update_fails_on_the_second_call(
    counter_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """The first call's result frozen into a constant: equal on call 1, wrong from call 2 on."""
    import tensorflow as tf

    frozen = GraphDef()
    constant = frozen.node.add(name="StatefulPartitionedCall", op="Const")
    constant.attr["dtype"].type = tf.float32.as_datatype_enum
    constant.attr["value"].tensor.CopyFrom(tf.make_tensor_proto(np.float32(1.0)))
    candidate = tmp_path / "frozen.pb"
    candidate.write_bytes(frozen.SerializeToString())
    report = tmp_path / "report.json"
    code, _, _ = run(
        capsys, "--compare", counter_model, candidate, "--signature", "incr_counter", "--report-json", report
    )
    data = json.loads(report.read_text())
    assert (code, data["status"], data["calls"]) == (1, "failed", 2)
    (check,) = data["outputs"]
    assert check["failing"] == 1 and check["elements"] == 2 and check["max_abs_error"] == 1.0
    assert check["note"] == "differs from call 2 on"


def test_a_state_read_then_advanced_is_not_frozen_and_verifies_call_by_call_when_kept(
    counter_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out, report = tmp_path / "out.pb", tmp_path / "report.json"
    code, _, stderr = run(capsys, counter_model, "--signature", "noisy", "-o", out)
    assert code == 2 and not out.exists() and stderr.count("\n") == 1
    assert "(state/.ATTRIBUTES/VARIABLE_VALUE) with AssignAddVariableOp" in stderr
    assert "reads it in the same run, so a constant would give every call the first call's result" in stderr
    code, _, _ = run(capsys, counter_model, "--signature", "noisy", "-o", out, "--passes", "", "--report-json", report)
    verification = json.loads(report.read_text())["verification"]
    assert (code, verification["status"], verification["calls"]) == (0, "passed", 2)
