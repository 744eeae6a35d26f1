"""The `optimize` command: the main job, its report, exit codes and one-line errors."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import optimizer
from optimizer import Graph, PassContext, Tensor, function_pass
from optimizer.cli import main
from optimizer.graph_io import read_graph_def
from optimizer.registry import unregister_pass
from optimizer.variables import variable_leftovers
from tests.fixture_models import Models, assert_reproduces

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "fixtures" / "small_cnn.pb"


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run `optimize` with the arguments (each written with `str`, so paths go as they are)."""
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_optimizes_the_fixture_writes_the_output_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    before = hashlib.sha256(CNN.read_bytes()).hexdigest()
    out, report = tmp_path / "cnn.opt.pb", tmp_path / "report.json"
    code, stdout, stderr = run(capsys, CNN, "-o", out, "--report-json", report)
    assert (code, stderr) == (0, "")
    assert hashlib.sha256(CNN.read_bytes()).hexdigest() == before
    data = json.loads(report.read_text())
    assert data["outputs"] == ["probabilities:0"] and data["inputs"] == ["images:0"]
    assert data["run"]["nodes_after"] < data["run"]["nodes_before"]
    assert (data["verification"]["status"], data["verification"]["passed"]) == ("passed", True)
    assert [check["name"] for check in data["verification"]["outputs"]] == ["probabilities:0"]
    assert data["bytes_after"] == out.stat().st_size
    ops = {node.op for node in read_graph_def(out).node}
    assert not ops & {"CheckNumerics", "HistogramSummary", "PlaceholderWithDefault"}
    assert "Nodes by op" in stdout and "outputs match" in stdout


def test_empty_pipeline_is_a_lossless_round_trip_and_pbtxt_is_chosen_by_extension(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "same.pbtxt"
    code, _, _ = run(capsys, CNN, "-o", out, "--passes", "", "--no-verify")
    assert code == 0
    assert out.read_text().startswith("node {")
    assert read_graph_def(out) == read_graph_def(CNN)
    binary = tmp_path / "same.txt"
    assert run(capsys, CNN, "-o", binary, "--passes", "", "--format", "pb", "--no-verify")[0] == 0
    assert read_graph_def(binary) == read_graph_def(CNN)
    assert not binary.read_bytes().startswith(b"node")


def test_named_outputs_and_inputs_restrict_the_graph(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "relu.pb"
    code, stdout, _ = run(capsys, CNN, "-o", out, "--inputs", "images", "--outputs", "relu:0")
    assert code == 0 and "relu:0" in stdout
    assert "MatMul" not in {node.op for node in read_graph_def(out).node}


@pytest.fixture
def breaking_pass() -> Iterator[None]:
    @function_pass("break-output")
    def break_output(graph: Graph, ctx: PassContext) -> None:
        """Feeds the softmax twice its input: wrong numbers."""
        (logits,) = graph.inputs_of("probabilities")
        dtype = graph.node("probabilities").attrs["T"]
        doubled = graph.add_node("doubled", "AddV2", [logits, logits], attrs={"T": dtype})
        graph.set_input("probabilities", 0, Tensor(doubled))

    yield
    unregister_pass("break-output")


def test_a_graph_that_fails_verification_exits_1_and_is_not_written(
    tmp_path: Path, capsys: pytest.CaptureFixture, breaking_pass: None
) -> None:
    out = tmp_path / "bad.pb"
    code, stdout, _ = run(capsys, CNN, "-o", out, "--passes", "strip,break-output")
    assert code == 1
    assert "FAIL" in stdout and "outputs differ" in stdout and "was not written" in stdout
    assert not out.exists()


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "file is empty"),
        (CNN.read_bytes()[:1000], "truncated or corrupt"),
        (b"\x1c\x00\x00\x00TFL3" + bytes(range(256)) * 4, "TensorFlow Lite model"),
        (b"\x08\x07\x12\x07pytorch\x1a\x032.1:\x02\x08\x01", "not a GraphDef"),
        (bytes(range(256)) * 16, "not a GraphDef"),
        (b"node { name: 'a' op: 'Const' \n", "not a text GraphDef"),
    ],
    ids=["empty", "truncated", "tflite", "onnx", "random-bytes", "broken-text"],
)
def test_bad_files_exit_2_with_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture, content: bytes, problem: str
) -> None:
    path = tmp_path / "model.pb"
    path.write_bytes(content)
    code, _, stderr = run(capsys, path, "-o", tmp_path / "out.pb")
    assert code == 2
    assert stderr.count("\n") == 1 and str(path) in stderr and problem in stderr
    assert not (tmp_path / "out.pb").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--passes", "strip,nope"], "unknown pass 'nope'; known passes: "),
        (["--outputs", "probabilitys"], "output 'probabilitys' names no node in the graph; closest: probabilities"),
        (["--inputs", "image"], "input 'image' names no node"),
        (["--outputs", "probabilities:3"], "has 1 output(s)"),
        (["-o", "/nonexistent-folder/out.pb"], "folder /nonexistent-folder does not exist"),
        (["-o", str(CNN)], "would overwrite an input of this run"),
        (["--no-such-flag"], "No such option"),
    ],
)
def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture, args: list[str], message: str) -> None:
    code, _, stderr = run(capsys, CNN, *args)
    assert code == 2
    assert stderr.count("\n") == 1 and message in stderr


def test_unwritable_output_path_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    # root may write to any folder; /proc refuses even root
    target = locked / "out.pb" if not os.access(locked, os.W_OK) else Path("/proc/optimize-out.pb")
    try:
        code, _, stderr = run(capsys, CNN, "-o", target, "--no-verify")
    finally:
        locked.chmod(0o700)
    assert code == 2 and stderr.count("\n") == 1
    assert f"{target}: cannot write" in stderr


def test_list_passes_shows_every_pass_and_the_default(capsys: pytest.CaptureFixture) -> None:
    code, stdout, _ = run(capsys, "--list-passes")
    assert code == 0
    for name in ("strip", "identity", "prune"):
        assert name in stdout
    assert f"default pipeline: {optimizer.DEFAULT_PIPELINE}" in stdout


def test_the_installed_command_exits_2_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.pb"
    bad.write_bytes(b"\x00\x01garbage")
    result = subprocess.run(
        [sys.executable, "-m", "optimizer", str(bad)], capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    expected = f"optimize: error: {bad}: not a GraphDef: the protobuf is truncated or corrupt"
    assert result.stderr.strip().splitlines() == [expected]


# ----- models with variables: checkpoints, meta graphs, SavedModels (issue 3) -------------------------------------

FREEZE = "inline,freeze,strip,identity,prune"


def test_freezes_a_saved_model_on_its_signature_and_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture, keras_models: Models
) -> None:
    model = keras_models["keras3_rnn"]
    out, report = tmp_path / "rnn.pb", tmp_path / "report.json"
    code, _, stderr = run(capsys, model.path("saved_model"), "-o", out, "--passes", FREEZE, "--report-json", report)
    assert (code, stderr) == (0, "")
    data = json.loads(report.read_text())
    assert (data["inputs"], data["outputs"]) == (model.info["inputs"], model.info["outputs"])
    assert data["verification"]["status"] == "passed" and data["verification"]["skipped"] is None
    assert variable_leftovers(read_graph_def(out)) == []
    assert_reproduces(read_graph_def(out), model)


@pytest.mark.parametrize("source", ["meta_graph", "graph_def"])
def test_freezes_a_training_graph_from_its_meta_graph_or_graph_def_and_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture, tf1_models: Models, source: str
) -> None:
    model = tf1_models["bn_cond_v1"]
    out, report = tmp_path / "frozen.pb", tmp_path / "report.json"
    extra = ["--checkpoint", model.path("checkpoint")] if source == "graph_def" else []
    interface = ["--inputs", "x,is_training", "--outputs", "probabilities"]
    code, _, stderr = run(
        capsys, model.path(source), "-o", out, "--passes", FREEZE, *interface, *extra, "--report-json", report
    )
    assert (code, stderr) == (0, "")
    assert json.loads(report.read_text())["verification"]["status"] == "passed"  # the original ran, restored
    assert variable_leftovers(read_graph_def(out)) == []
    assert_reproduces(read_graph_def(out), model)
    compared = tmp_path / "compare.json"
    code, _, _ = run(capsys, "--compare", model.path(source), out, *interface, *extra, "--report-json", compared)
    assert code == 0 and json.loads(compared.read_text())["status"] == "passed"


def test_the_report_says_what_of_the_checkpoint_was_not_carried_over(
    tmp_path: Path, capsys: pytest.CaptureFixture, tf1_models: Models
) -> None:
    model = tf1_models["bn_cond_v1"]
    out, report = tmp_path / "frozen.pb", tmp_path / "report.json"
    interface = ["--inputs", "x,is_training", "--outputs", "probabilities"]
    code, stdout, _ = run(
        capsys, model.path("meta_graph"), "-o", out, "--passes", FREEZE, *interface, "--report-json", report
    )
    assert code == 0
    variables = json.loads(report.read_text())["variables"]
    assert variables["source"] == str(model.path("checkpoint"))
    # 8 variables (115 floats) are frozen; 12 Adam slots and the 2 beta powers (99 * 2 + 2 floats), the step counter go
    assert (variables["stored"], variables["frozen"]) == ({"count": 23, "bytes": 1268}, {"count": 8, "bytes": 460})
    assert variables["not_carried_over"] == {
        "count": 15,
        "bytes": 808,
        "by_kind": {"optimizer slots": {"count": 14, "bytes": 800}, "step counters": {"count": 1, "bytes": 8}},
    }
    assert "not carried over: optimizer slots" in stdout and "800 B" in stdout
    code, stdout, _ = run(capsys, CNN, "-o", tmp_path / "cnn.pb", "--report-json", report)
    assert json.loads(report.read_text())["variables"] is None and "Variables" not in stdout


def test_checkpoint_errors_exit_2_with_one_line_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture, tf1_models: Models, keras_models: Models
) -> None:
    from tests.test_checkpoint import save_checkpoint

    for folder in ("graph", "shape"):
        (tmp_path / folder).mkdir()
    values: dict[str, np.ndarray] = {"w": np.zeros((2, 3), np.float32), "b": np.zeros(2)}
    graph_def, partial = save_checkpoint(tmp_path / "graph", values, saved=["w"])
    graph_pb = tmp_path / "graph.pb"
    graph_pb.write_bytes(graph_def.SerializeToString())
    _, other_shape = save_checkpoint(tmp_path / "shape", {"w": np.zeros((3, 3), np.float32)})
    other_model = str(tf1_models["variable_dtypes"].path("checkpoint"))
    lonely = tmp_path / "alone.meta"
    lonely.write_bytes(tf1_models["bn_cond_v1"].path("meta_graph").read_bytes())
    saved_model = str(keras_models["keras3_export"].path("saved_model"))
    with_values = [graph_pb, "--outputs", "w,b", "--checkpoint"]
    cases: list[tuple[list[object], str, str]] = [
        ([*with_values, tmp_path / "nothing"], str(tmp_path / "nothing"), "no checkpoint here"),
        ([*with_values, partial], partial, "variable 'b' is not in the checkpoint"),
        ([*with_values, other_shape], other_shape, "has shape [2, 3] in the graph but [3, 3] in the checkpoint"),
        ([*with_values, other_model], other_model, "none of the graph's 2 variables is in the checkpoint"),
        (
            [saved_model, "--signature", "nope"],
            saved_model,
            "no signature 'nope'; its signatures: serve, serving_default",
        ),
        ([lonely], str(lonely), "no checkpoint next to this meta graph"),
        ([CNN, "--signature", "serve"], str(CNN), "apply only to SavedModel folders"),
        (
            [*with_values, partial, "--outputs", "w", "--passes", "freeze{max-graph-bytes=100}"],
            partial,
            "over protobuf",
        ),
    ]
    for args, named, message in cases:
        code, _, stderr = run(capsys, "--passes", FREEZE, *args, "-o", tmp_path / "out.pb")
        assert code == 2, stderr
        assert stderr.count("\n") == 1 and message in stderr and named in stderr, stderr
        assert not (tmp_path / "out.pb").exists()
