"""A verification that compared nothing is not a pass: exit 4 and one line saying why and what to give; graphs
that call Python are refused; which exit code is the worst (batch mode: tests/test_cli_batch.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from optimizer._tf import tensorflow
from optimizer.exit_codes import worst
from optimizer.graph_io import write_graph_def
from optimizer.verify import INPUTS_REMEDY
from tests.test_cli import run


def save_graph(path: Path, build: Callable[[], object]) -> Path:
    tf = tensorflow()
    graph = tf.Graph()
    with graph.as_default():
        build()
    write_graph_def(graph.as_graph_def(), path)
    return path


def reshape_to_12(path: Path) -> Path:
    """x[?] -> reshape [3, 4]: a random x (its dynamic dimension fed as 1) cannot run; twelve values can."""
    tf = tensorflow()
    return save_graph(
        path, lambda: tf.reshape(tf.compat.v1.placeholder(tf.float32, [None], name="x"), [3, 4], name="y")
    )


def typed_input(path: Path, dtype: str) -> Path:
    tf = tensorflow()
    return save_graph(path, lambda: tf.identity(tf.compat.v1.placeholder(dtype, [], name="x"), name="y"))


def matmul(path: Path) -> Path:
    tf = tensorflow()
    return save_graph(
        path,
        lambda: tf.identity(tf.matmul(tf.compat.v1.placeholder(tf.float32, [None, 4], name="x"), tf.ones([4, 2])), "y"),
    )


RESHAPE_REASON = (
    "the original graph does not run on these inputs: node 'y' (Reshape): Input to reshape is a tensor with 1 values,"
    " but the requested shape has 12"
)


def test_an_original_that_does_not_run_on_random_inputs_is_written_but_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, out, report = reshape_to_12(tmp_path / "m.pb"), tmp_path / "out.pb", tmp_path / "report.json"
    code, stdout, stderr = run(capsys, model, "-o", out, "--report-json", report)
    assert code == 4 and out.exists()
    assert (
        stderr == f"optimize: warning: {out} written but not verified: {RESHAPE_REASON}; to verify, {INPUTS_REMEDY}\n"
    )
    verification = json.loads(report.read_text())["verification"]
    assert (verification["status"], verification["passed"]) == ("not run", False)
    assert verification["skipped"] == RESHAPE_REASON
    assert f"verification: not run: {RESHAPE_REASON}" in stdout.replace("\n", " ")
    np.save(tmp_path / "x.npy", np.arange(12, dtype=np.float32))
    code, _, stderr = run(capsys, model, "-o", out, "--input-data", f"x={tmp_path / 'x.npy'}", "--report-json", report)
    assert (code, stderr) == (0, "")
    assert json.loads(report.read_text())["verification"]["status"] == "passed"
    code, _, stderr = run(capsys, model, "-o", out, "--input-shape", "x:12", "--report-json", report)
    assert (code, stderr) == (0, "")
    assert json.loads(report.read_text())["verification"]["status"] == "passed"
    assert run(capsys, model, "-o", out, "--no-verify", "--report-json", report)[:3:2] == (0, "")
    assert json.loads(report.read_text())["verification"] is None


def test_compare_takes_input_shape_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = reshape_to_12(tmp_path / "m.pb")
    code, stdout, stderr = run(capsys, "--compare", model, model, "-q")
    assert code == 4 and stdout == ""
    assert stderr == f"optimize: warning: not verified: {RESHAPE_REASON}; to verify, {INPUTS_REMEDY}\n"
    report = tmp_path / "compare.json"
    code, _, stderr = run(capsys, "--compare", model, model, "--input-shape", "x:12", "--report-json", report)
    assert (code, stderr) == (0, "") and json.loads(report.read_text())["status"] == "passed"


def test_help_lists_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(capsys, "--help")
    assert code == 0
    text = " ".join(stdout.split())
    assert "Exit codes: 0 written and verified (or --no-verify); 1 verification failed" in text
    assert "4 written but not verified" in text and "A batch exits with its worst: 3, 2, 1, 4, 0." in text


@pytest.mark.parametrize("dtype", ["variant", "qint8"])
def test_an_input_no_value_can_be_made_of_exits_4_and_compare_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], dtype: str
) -> None:
    model, out = typed_input(tmp_path / "m.pb", dtype), tmp_path / "out.pb"
    reason = f"cannot make inputs for the original graph: input x:0 is a {dtype}, of which no value can be made up"
    code, _, stderr = run(capsys, model, "-o", out, "-q")
    assert code == 4 and out.exists()
    assert stderr == f"optimize: warning: {out} written but not verified: {reason}; to verify, {INPUTS_REMEDY}\n"
    report = tmp_path / "compare.json"
    code, _, stderr = run(capsys, "--compare", model, out, "--report-json", report)
    assert code == 4 and stderr == f"optimize: warning: not verified: {reason}; to verify, {INPUTS_REMEDY}\n"
    assert json.loads(report.read_text())["status"] == "not run"


def test_a_tflite_model_whose_original_does_not_run_is_written_but_exits_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, out, report = reshape_to_12(tmp_path / "m.pb"), tmp_path / "m.tflite", tmp_path / "report.json"
    code, stdout, stderr = run(capsys, model, "-o", out, "--report-json", report)
    assert code == 4 and out.read_bytes()[4:8] == b"TFL3"
    assert (
        stderr == f"optimize: warning: {out} written but not verified: {RESHAPE_REASON}; to verify, {INPUTS_REMEDY}\n"
    )
    assert json.loads(report.read_text())["verification"]["status"] == "not run"
    assert "not run: the original graph does not run" in stdout


@pytest.mark.parametrize("wrap", ["py_function", "numpy_function", "in_a_function_body"])
def test_a_graph_that_calls_python_exits_2_naming_the_op(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], wrap: str
) -> None:
    tf = tensorflow()

    def build() -> None:
        x = tf.compat.v1.placeholder(tf.float32, [3], name="x")
        if wrap == "numpy_function":
            tf.identity(tf.numpy_function(lambda v: v * 2, [x], tf.float32, name="py"), name="y")
            return
        if wrap == "py_function":
            tf.identity(tf.py_function(lambda v: v * 2, [x], tf.float32, name="py"), name="y")
            return

        @tf.function
        def body(value: object) -> object:
            return tf.py_function(lambda v: v * 2, [value], tf.float32, name="py")

        tf.identity(body(x), name="y")

    model = save_graph(tmp_path / "m.pb", build)
    op = {"py_function": "EagerPyFunc 'py'", "numpy_function": "PyFunc 'py'", "in_a_function_body": "EagerPyFunc 'py'"}
    code, _, stderr = run(capsys, model, "-o", tmp_path / "out.pb", "--no-verify")
    assert code == 2 and not (tmp_path / "out.pb").exists()
    assert stderr == (
        f"optimize: error: {model}: the graph calls Python ({op[wrap]}: tf.py_function or tf.numpy_function), "
        "which exists only in the process that built it; the graph cannot run anywhere else\n"
    )


def test_the_worst_exit_code_orders_errors_failures_then_not_verified() -> None:
    assert worst([]) == 0
    assert worst([0, 4]) == 4
    assert worst([4, 1, 0]) == 1
    assert worst([1, 2, 4]) == 2
    assert worst([2, 3, 1]) == 3


def test_strings_the_graph_parses_are_not_run_until_given(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tf = tensorflow()
    model = save_graph(
        tmp_path / "m.pb",
        lambda: tf.identity(tf.strings.to_number(tf.compat.v1.placeholder(tf.string, [2], name="s")), name="y"),
    )
    out, report = tmp_path / "out.pb", tmp_path / "report.json"
    code, _, stderr = run(capsys, model, "-o", out)
    assert code == 4
    assert stderr.startswith(
        f"optimize: warning: {out} written but not verified: the original graph does not run on these inputs: "
        "node 'StringToNumber' (StringToNumber): StringToNumberOp could not correctly convert string: s"
    )
    np.save(tmp_path / "s.npy", np.array([b"1.5", b"-2"]))
    code, _, stderr = run(capsys, model, "-o", out, "--input-data", f"s={tmp_path / 's.npy'}", "--report-json", report)
    assert (code, stderr) == (0, "") and json.loads(report.read_text())["verification"]["status"] == "passed"
