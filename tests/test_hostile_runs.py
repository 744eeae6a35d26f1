"""Every hostile run of `tests/hostile.py` (`SCENARIOS`) through `python -m optimizer` in a child process with a
time and an address-space limit: it ends by itself with its documented exit code, an error is one line holding
the expected words, no input changes, and nothing is written but the output of a success."""

from __future__ import annotations

import hashlib
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile import SCENARIOS, Scenario

ROOT = Path(__file__).resolve().parent.parent
TIME_LIMIT_S = 240
MEMORY_LIMIT = 6 * 2**30  # address space: TensorFlow maps about 2 GiB on import


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def _snapshot(folder: Path) -> dict[str, str]:
    """Every entry under `folder`: a file's digest, a link's target, or its kind."""
    found = {}
    for path in sorted(folder.rglob("*")):
        key = str(path.relative_to(folder))
        if path.is_symlink():
            found[key] = "link -> " + os.readlink(path)
        elif path.is_fifo():
            found[key] = "fifo"
        elif path.is_dir():
            found[key] = "folder"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[scenario.name for scenario in SCENARIOS])
def test_a_hostile_run_ends_cleanly(tmp_path: Path, scenario: Scenario) -> None:
    folder = tmp_path / "run"
    folder.mkdir()
    args = scenario.make(folder)
    before = _snapshot(tmp_path)
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
    if scenario.code != 0:
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("optimize: error: "), done.stderr[-2000:]
        assert scenario.message in done.stderr, done.stderr
    else:
        assert done.stderr == "", done.stderr[-2000:]
    after = _snapshot(tmp_path)
    added = {key for key in after if key not in before}
    assert added == {f"run/{name}" for name in scenario.writes}, added  # no stray, partial or crash-report file
    assert {key: after[key] for key in before} == before  # every input as it was
