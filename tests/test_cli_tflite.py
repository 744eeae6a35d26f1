"""`optimize -o model.tflite`: convert after optimizing, verify the TFLite model against the original in
TensorFlow, report its size and operators beside TensorFlow alone's conversion; `--target tflite`; the usage
mistakes around them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from optimizer.targets import TFLITE_PIPELINE
from tests.fixture_models import Models
from tests.test_cli import run

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "fixtures" / "small_cnn.pb"


def test_a_training_graph_tensorflow_alone_rejects_is_written_as_tflite_and_verified(
    tf1_models: Models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tf1_models["bn_cond_v1"]
    inference = tmp_path / "false.npy"
    np.save(inference, np.array(False))
    out, report = tmp_path / "model.tflite", tmp_path / "report.json"
    code, stdout, _ = run(
        capsys,
        model.path("meta_graph"),
        "--inputs",
        "x,is_training",
        "--outputs",
        "probabilities",
        "--input-data",
        f"is_training={inference}",
        "-o",
        out,
        "--compare-converter",
        "--report-json",
        report,
    )
    assert code == 0, stdout
    assert out.read_bytes()[4:8] == b"TFL3"
    data = json.loads(report.read_text())
    assert data["run"]["pipeline"] == TFLITE_PIPELINE
    assert data["bytes_after"] == data["tflite"]["bytes"] == out.stat().st_size
    assert data["tflite"]["operators"] > 0 and data["verification"]["status"] == "passed"
    alone = data["tflite"]["tensorflow_alone"]
    assert alone["bytes"] is None and "float_ref" in alone["error"]
    assert alone["how"].startswith("convert_variables_to_constants")
    assert "TFLite" in stdout and "this tool" in stdout and "TensorFlow alone rejects the model" in stdout


def test_tensorflow_alones_model_is_measured_and_checked_beside_ours(
    keras_models: Models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved_model = keras_models["keras3_export"].path("saved_model")
    report = tmp_path / "report.json"
    code, stdout, _ = run(
        capsys, saved_model, "-o", tmp_path / "m.tflite", "--compare-converter", "--report-json", report
    )
    assert code == 0, stdout
    data = json.loads(report.read_text())["tflite"]
    alone = data["tensorflow_alone"]
    assert alone["how"].startswith("tf.lite.TFLiteConverter.from_saved_model")
    assert alone["bytes"] > 0 and alone["operators"] > 0 and alone["verification"] is not None
    assert "TensorFlow alone" in stdout and "outputs match the original" in stdout


def test_a_tflite_model_that_fails_verification_is_not_written(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "cnn.tflite"
    code, stdout, _ = run(capsys, CNN, "-o", out, "--float16", "--rtol", "0", "--atol", "0")
    assert code == 1
    assert not out.exists()
    assert "was not written: the TFLite model failed verification" in stdout


def test_quantized_weights_are_compared_with_looser_default_tolerances(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "cnn.tflite", tmp_path / "report.json"
    code, stdout, _ = run(capsys, CNN, "-o", out, "--dynamic-range", "--report-json", report)
    assert code == 0, stdout
    data = json.loads(report.read_text())
    assert data["tflite"]["options"] == {"float16": False, "dynamic_range": True, "select_tf_ops": False}
    assert "quantized weights (--dynamic-range): compared with rtol 0.1, atol 0.01" in data["notes"]


def test_the_target_alone_writes_the_graph_the_converter_takes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, report = tmp_path / "cnn.pb", tmp_path / "report.json"
    code, _, _ = run(capsys, CNN, "--target", "tflite", "-o", out, "--report-json", report)
    assert code == 0
    data = json.loads(report.read_text())
    assert data["run"]["pipeline"] == TFLITE_PIPELINE and data["tflite"] is None
    assert out.read_bytes()[4:8] != b"TFL3"
    code, _, _ = run(capsys, CNN, "-o", tmp_path / "cnn.bin", "--format", "tflite")
    assert code == 0 and (tmp_path / "cnn.bin").read_bytes()[4:8] == b"TFL3"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["-o", "{tmp}/x.pb", "--float16"], "--float16 applies to .tflite output"),
        (["-o", "{tmp}/x.pb", "--compare-converter"], "--compare-converter applies to .tflite output"),
        (["-o", "{tmp}/x.tflite", "--float16", "--dynamic-range"], "choose one"),
        (["-o", "{tmp}/x.tflite", "--target", "tflite", "--passes", "prune"], "--target and --passes"),
        (["-o", "{tmp}/x.pb", "--target", "tflit"], "unknown target 'tflit'; known targets: tflite"),
    ],
)
def test_usage_mistakes_exit_2_with_one_line(
    arguments: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, stderr = run(capsys, CNN, *[argument.format(tmp=tmp_path) for argument in arguments])
    assert code == 2 and message in stderr and stderr.count("\n") == 1, stderr
    assert not list(tmp_path.iterdir())


def test_a_graph_the_converter_rejects_exits_2_and_says_what_to_do(
    keras_models: Models, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "rnn.tflite"
    code, _, stderr = run(capsys, keras_models["keras3_rnn"].path("saved_model"), "-o", out)
    assert code == 2 and not out.exists()
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("optimize: error: the TFLite converter rejected the graph:") and "--input-shape" in last
