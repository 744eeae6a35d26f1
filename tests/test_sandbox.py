"""Hostile graphs run by TensorFlow in the limited child process (`optimizer.sandbox`): an `Abort` op, an endless
`While`, a `Fill` over the memory limit end with one line and exit 2, nothing written; a batch goes on past them.
Each case is bounded by the limits it gives (8 s, 1.5 GiB)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from optimizer import sandbox
from optimizer._tf import tensorflow
from optimizer.cli import main

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "fixtures" / "small_cnn.pb"
LIMITS = ["--time-limit", "8", "--memory-limit", "1500M"]


@pytest.fixture(autouse=True)
def default_limits() -> Any:
    yield
    sandbox.set_limits(sandbox.Limits())


def save(path: Path, function: Callable[[Any], Any]) -> Path:
    tf = tensorflow()
    graph = tf.function(function).get_concrete_function(tf.TensorSpec([2], tf.float32)).graph
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def aborting(x: Any) -> Any:
    tf = tensorflow()
    with tf.control_dependencies([tf.raw_ops.Abort(error_msg="planted")]):
        return tf.identity(x * 2.0)


def endless(x: Any) -> Any:
    tf = tensorflow()
    count = tf.while_loop(lambda i: i < 2**62, lambda i: i + 1, [tf.constant(0, tf.int64)])
    return x + tf.cast(count, tf.float32)


def filling(x: Any) -> Any:
    tf = tensorflow()
    return x + tf.reduce_sum(tf.fill([600_000_000], 1.0))[None]  # 2.4 GB at run time


def errors(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("optimize: error:")]


@pytest.mark.parametrize(
    "function, cause",
    [
        (aborting, "crashed with SIGABRT (an Abort op or a failed check in a kernel)"),
        (endless, "took longer than the time limit of 8 s (--time-limit)"),
        (filling, "used more than the memory limit of 1.46 GiB (--memory-limit)"),
    ],
)
def test_a_hostile_original_is_one_line_and_exit_2_with_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], function: Callable[[Any], Any], cause: str
) -> None:
    model = save(tmp_path / "model.pb", function)
    out = tmp_path / "out.pb"
    assert main([str(model), "-o", str(out), *LIMITS]) == 2
    err = capsys.readouterr().err
    assert errors(err) == [f"optimize: error: {model}: verification (running the original graph): {cause}"], err
    assert not out.exists()


def test_fold_leaves_an_endless_loop_unfolded_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    model = save(tmp_path / "model.pb", endless)
    assert main([str(model), "--no-verify", *LIMITS]) == 0
    assert "left 1 node(s) unfolded: fold of node 'Cast': took longer than the time limit of 8 s" in caplog.text


def test_a_crash_is_one_row_of_a_batch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "a.pb").write_bytes(CNN.read_bytes())
    save(tmp_path / "b.pb", aborting)
    (tmp_path / "c.pb").write_bytes(CNN.read_bytes())
    out = tmp_path / "out"
    paths = [str(tmp_path / name) for name in ("a.pb", "b.pb", "c.pb")]
    assert main([*paths, "-o", f"{out}/", *LIMITS]) == 2
    text = capsys.readouterr().out
    assert sorted(path.name for path in out.iterdir()) == ["a.pb", "c.pb"]
    assert "2 ok, 0 not verified, 0 failed verification, 1 errors" in text and "SIGABRT" in text


def test_the_worker_returns_what_tensorflow_computes_and_survives_a_crash() -> None:
    assert sandbox.call("test", pow, 2, 10) == 1024
    with pytest.raises(sandbox.ChildFailure, match=r"^test of node 'n': crashed with SIGSEGV$"):
        sandbox.call("test", _segfault, node="n")
    with pytest.raises(ZeroDivisionError):
        sandbox.call("test", divmod, 1, 0)
    with pytest.raises(RuntimeError, match=r"^one two$"):
        sandbox.call("test", _raise_unpicklable)
    assert sandbox.call("test", pow, 3, 2) == 9


class _TwoArguments(Exception):
    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")  # pickled with one argument: it cannot be rebuilt


def _raise_unpicklable() -> None:
    raise _TwoArguments("one", "two")


def _segfault() -> None:
    import ctypes

    ctypes.string_at(0)


@pytest.mark.parametrize("text, size", [("4G", 4 * 2**30), ("512M", 512 * 2**20), ("1.5GiB", 3 * 2**29), ("10", 10)])
def test_sizes_parse(text: str, size: int) -> None:
    assert sandbox.parse_size(text) == size


def test_a_bad_memory_limit_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(CNN), "--memory-limit", "lots"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_isolation_changes_no_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = [str(CNN), "--passes", "strip,fold-batch-norms,fold,arith,fold", "-q"]
    stages: list[str] = []
    real = sandbox.call

    def recording(stage: str, *args: Any, **kwargs: Any) -> Any:
        stages.append(stage)
        return real(stage, *args, **kwargs)

    monkeypatch.setattr(sandbox, "call", recording)
    assert main([*args, "-o", str(tmp_path / "isolated.pb")]) == 0
    assert "verification" in stages
    monkeypatch.setattr(sandbox, "call", lambda stage, function, *args, node=None, **kwargs: function(*args, **kwargs))
    assert main([*args, "-o", str(tmp_path / "in_process.pb")]) == 0
    assert (tmp_path / "isolated.pb").read_bytes() == (tmp_path / "in_process.pb").read_bytes()


def doubling(x: Any) -> Any:
    return tensorflow().identity(x * 2.0)


def test_a_candidate_that_crashes_fails_verification(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original, candidate = save(tmp_path / "original.pb", doubling), save(tmp_path / "candidate.pb", aborting)
    report = tmp_path / "report.json"
    assert main(["--compare", str(original), str(candidate), *LIMITS, "--report-json", str(report)]) == 1
    out, err = capsys.readouterr()
    assert "verification: outputs differ" in out and errors(err) == []
    (check,) = json.loads(report.read_text())["outputs"]
    assert check["note"].startswith("the candidate made TensorFlow fail: verification (running the candidate): crash")
    assert main(["--compare", str(candidate), str(original), *LIMITS]) == 2
    assert errors(capsys.readouterr().err) == [
        f"optimize: error: {candidate}: verification (running the original graph): crashed with SIGABRT (an Abort op"
        " or a failed check in a kernel)"
    ]
