"""Batch mode: several models into one folder, in worker processes, with a summary and the worst exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from optimizer.cli import main
from optimizer.graph_io import read_graph_def
from tests.test_cli import run
from tests.test_cli_not_verified import matmul, reshape_to_12

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "fixtures" / "small_cnn.pb"


def test_batch_writes_one_output_per_model_and_summarizes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.pb").write_bytes(CNN.read_bytes())
    broken = tmp_path / "broken.pb"
    broken.write_bytes(b"\x00garbage")
    out = tmp_path / "out"
    args = [str(tmp_path / "a" / "model.pb"), str(tmp_path / "b" / "model.pb"), str(broken), "-o", f"{out}/"]
    assert main([*args, "--jobs", "2"]) == 2
    text = capsys.readouterr().out
    assert sorted(path.name for path in out.iterdir()) == ["a_model.pb", "b_model.pb"]
    assert len(read_graph_def(out / "a_model.pb").node) < len(read_graph_def(CNN).node)
    after = len(read_graph_def(out / "a_model.pb").node)
    assert f"59 -> {after}" in text and "match" in text and "not a GraphDef" in text
    assert "2 ok, 0 not verified, 0 failed verification, 1 errors" in text


def test_one_good_model_into_a_folder_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert main([str(CNN), "-o", str(out), "--format", "pbtxt"]) == 0
    assert (out / "small_cnn.pbtxt").read_text().startswith("node {")
    assert main([str(CNN), str(CNN)]) == 2
    assert "several INPUTs need -o OUTDIR/" in capsys.readouterr().err


def test_batch_counts_not_verified_apart_and_exits_with_the_worst(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good, unverified = matmul(tmp_path / "good.pb"), reshape_to_12(tmp_path / "unverified.pb")
    out = tmp_path / "out"
    code, stdout, _ = run(capsys, good, unverified, "-o", f"{out}/")
    assert code == 4 and sorted(path.name for path in out.iterdir()) == ["good.pb", "unverified.pb"]
    assert "1 ok, 1 not verified, 0 failed verification, 0 errors" in stdout
    assert "not run" in stdout and "not verified" in stdout
    broken = tmp_path / "broken.pb"
    broken.write_bytes(b"\x00garbage")
    code, stdout, _ = run(capsys, good, unverified, broken, "-o", f"{out}/")
    assert code == 2 and "1 ok, 1 not verified, 0 failed verification, 1 errors" in stdout
