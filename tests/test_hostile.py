"""Hostile and broken models (tests/hostile.py): each ends with exit 2 and one line, or a verified result;
never a traceback, an internal error or a wrong result. `scripts/fuzz.py` runs many more of the same.

Every crafted run (`SCENARIOS`) goes through `python -m optimizer` in a child process with a time and an
address-space limit: it ends by itself with its documented exit code, an error is one line holding the expected
words, no input changes, and nothing is written but the output of a success."""

from __future__ import annotations

import os
import resource
import secrets
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from optimizer.cli import main
from optimizer.graph_io import read_graph_def
from tests.hostile import (
    BYTE_LEVEL,
    SCENARIOS,
    SECRET_NAME,
    STRUCTURAL,
    Scenario,
    hostile_cases,
    snapshot,
    verdict,
)

ROOT = Path(__file__).resolve().parent.parent
SEEDS = [read_graph_def(ROOT / "fixtures" / "small_cnn.pb")]
CASES = list(hostile_cases(SEEDS, np.random.default_rng(2024), 3 * (len(BYTE_LEVEL) + len(STRUCTURAL))))


@pytest.mark.parametrize("kind, data", CASES, ids=[f"{kind}-{index}" for index, (kind, _) in enumerate(CASES)])
def test_hostile_model_gets_a_clean_error_or_a_verified_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], kind: str, data: bytes
) -> None:
    model = tmp_path / "model.pb"
    model.write_bytes(data)
    code = main([str(model), "-o", str(tmp_path / "out.pb")])
    out, err = capsys.readouterr()
    assert code in (0, 2, 4), (kind, code, err)
    if code == 2:
        assert err.count("\n") == 1 and str(model) in err, err
        assert not (tmp_path / "out.pb").exists()
    elif code == 4:  # written, not verified: one line says why
        assert err.count("\n") == 1 and err.startswith("optimize: warning:"), err
        assert "verification: not run: " in out and (tmp_path / "out.pb").exists()
    else:
        assert "verification: outputs match" in out and err == ""
    assert model.read_bytes() == data


def test_every_kind_is_covered() -> None:
    assert {kind for kind, _ in CASES} == set(BYTE_LEVEL) | set(STRUCTURAL)


def test_an_unimportable_graph_is_an_input_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "bad.pbtxt"
    model.write_text(
        'node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }\n'
        'node { name: "y" op: "AddV2" input: "x" attr { key: "T" value { type: DT_FLOAT } } }\n'
    )
    assert main([str(model), "--outputs", "y"]) == 2
    assert f"{model}: node 'y' (AddV2) has 1 data input(s), but AddV2 takes 2" in capsys.readouterr().err


def test_custom_ops_are_kept_and_not_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "custom.pbtxt"
    model.write_text(
        'node { name: "x" op: "Placeholder" attr { key: "dtype" value { type: DT_FLOAT } } }\n'
        'node { name: "i" op: "Identity" input: "x" attr { key: "T" value { type: DT_FLOAT } } }\n'
        'node { name: "y" op: "MyCustomOp" input: "i" }\n'
    )
    out = tmp_path / "out.pbtxt"
    assert main([str(model), "-o", str(out), "--outputs", "y"]) == 4
    out_text, err = capsys.readouterr()
    assert "verification: not run: the graph uses ops this TensorFlow does not know (MyCustomOp)" in out_text
    assert err == (
        f"optimize: warning: {out} written but not verified: the graph uses ops this TensorFlow does not know"
        " (MyCustomOp), so it is not run; --no-verify skips the check\n"
    )
    assert [node.op for node in read_graph_def(out).node] == ["Placeholder", "MyCustomOp"]


def test_a_constant_with_an_absurd_declared_shape_is_never_decoded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """10^12 elements written as one repeated value: arith's `x * 1` and fold must not expand it (3.6 TiB)."""
    model = tmp_path / "absurd.pbtxt"
    model.write_text(
        'node { name: "big" op: "Const" attr { key: "dtype" value { type: DT_INT32 } } attr { key: "value" value {'
        " tensor { dtype: DT_INT32 tensor_shape { dim { size: 1000000 } dim { size: 1000000 } } int_val: 1 } } } }\n"
        'node { name: "one" op: "Const" attr { key: "dtype" value { type: DT_INT32 } } attr { key: "value" value {'
        " tensor { dtype: DT_INT32 tensor_shape { } int_val: 1 } } } }\n"
        'node { name: "y" op: "Mul" input: "big" input: "one" attr { key: "T" value { type: DT_INT32 } } }\n'
    )
    code = main([str(model), "-o", str(tmp_path / "out.pbtxt"), "--outputs", "y", "--no-verify"])
    assert code in (0, 2), capsys.readouterr().err
    capsys.readouterr()


TIME_LIMIT_S = 240
MEMORY_LIMIT = 6 * 2**30  # address space: TensorFlow maps about 2 GiB on import


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
def test_a_hostile_run_ends_cleanly(tmp_path: Path, scenario: Scenario) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    token = secrets.token_hex(16)
    (tmp_path / SECRET_NAME).write_text(token)  # a file beside the model's folder: never to reach an output
    args = scenario.make(folder)
    before = snapshot(tmp_path)
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "optimizer", *args, "-q"],
            cwd=folder,
            env=environment,
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S,
            preexec_fn=_limit_memory,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{scenario.name}: still running after {TIME_LIMIT_S} s")
    assert done.returncode == scenario.code, (scenario.name, done.returncode, done.stderr[-2000:])
    # Before the verdict, a pass may warn about what it kept (`fold: kept 3 node(s) ...`): one line each.
    lines, last = verdict(done.stderr)
    if scenario.code != 0:
        prefix = "optimize: warning: " if scenario.code == 4 else "optimize: error: "  # 4: written, not verified
        assert len(lines) == 1 and last.startswith(prefix) and scenario.message in last, done.stderr[-2000:]
    else:
        assert lines == [], done.stderr[-2000:]
    after = snapshot(tmp_path)
    added = {key for key in after if key not in before}
    assert added == {f"run/{name}" for name in scenario.writes}, added  # no stray, partial or crash-report file
    assert {key: after[key] for key in before} == before  # every input as it was
    written = [path for path in tmp_path.rglob("*") if path.is_file() and str(path.relative_to(tmp_path)) in added]
    assert token not in done.stdout and not any(token.encode() in path.read_bytes() for path in written)
