"""Debugging aids of the command: --explain, --list-passes, -q, --dump-dir, --print-after-change, --keep-going,
crash reports, --diff."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import optimizer
from optimizer import Graph, PassContext, function_pass
from optimizer.cli import main
from optimizer.graph_io import read_graph_def
from optimizer.registry import unregister_pass

ROOT = Path(__file__).resolve().parent.parent
CNN = str(ROOT / "fixtures" / "small_cnn.pb")


def test_explain_prints_the_whole_contract(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--explain", "identity"]) == 0
    out = capsys.readouterr().out
    assert "passes.identity.RemoveIdentities" in out and "cond/switch_t" in out and "options: -" in out
    assert main(["--explain", "nope"]) == 2
    assert "unknown pass 'nope'" in capsys.readouterr().err


def test_list_passes_shows_options_with_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--list-passes"]) == 0
    out = capsys.readouterr().out
    assert "options (defaults)" in out and "--explain PASS" in out


def test_quiet_prints_nothing_and_keeps_the_exit_code(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "r.json"
    assert main([CNN, "-o", str(tmp_path / "o.pb"), "-q", "--report-json", str(report)]) == 0
    assert capsys.readouterr() == ("", "")
    assert json.loads(report.read_text())["run"]["constant_bytes_after"] > 0


def test_dump_dir_writes_the_graph_after_each_changing_pass(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    dumps, out = tmp_path / "dumps", tmp_path / "o.pb"
    args = [CNN, "-o", str(out), "--passes", "identity,identity,prune", "--dump-dir", str(dumps), "-q"]
    assert main(args) == 0
    assert sorted(path.name for path in dumps.iterdir()) == ["001-identity.txt", "002-prune.txt"]
    written = optimizer.load(str(out), ["images"], ["probabilities"])
    assert (dumps / "002-prune.txt").read_text() == str(written) + "\n"  # the graph -o wrote, one line a node
    first = (dumps / "001-identity.txt").read_text().splitlines()
    assert first[0] == "graph(images: f32[?,16,16,3]) -> (probabilities)"
    assert len(first) > len(str(written).splitlines())  # prune removed nodes after identity


def test_print_after_change_prints_each_changed_graph(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([CNN, "--passes", "identity,identity", "--print-after-change", "--no-verify"]) == 0
    out = capsys.readouterr().out
    assert out.count("// ----- after identity") == 1
    assert "  probabilities = Softmax(" in out and "graph(images: f32[?,16,16,3]) -> (probabilities)" in out


@pytest.fixture
def crashing() -> Iterator[None]:
    @function_pass("crashing")
    def crash(graph: Graph, ctx: PassContext) -> None:
        """Removes a summary, then fails."""
        graph.remove_nodes([node.name for node in graph.nodes() if node.op == "HistogramSummary"])
        raise ZeroDivisionError("planted crash")

    yield
    unregister_pass("crashing")


def test_keep_going_rolls_back_the_failing_pass(tmp_path: Path, crashing: None, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "o.pb"
    assert main([CNN, "-o", str(out), "--passes", "crashing,identity", "--keep-going"]) == 0
    ops = {node.op for node in read_graph_def(out).node}
    assert "HistogramSummary" in ops and "CheckNumerics" in ops  # the crashing pass's removal was rolled back


def test_an_internal_error_exits_3_with_a_crash_report(
    tmp_path: Path, crashing: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([CNN, "--passes", "strip,crashing"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pass 'crashing' failed after strip: planted crash" in err
    (report,) = tmp_path.glob("optimize-crash-*.txt")
    text = report.read_text()
    assert f"command: optimize {CNN} --passes strip,crashing" in text
    assert "tensorflow 2." in text and "ZeroDivisionError: planted crash" in text


def test_diff_names_removed_and_changed_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.pb"
    assert main([CNN, "-o", str(out), "-q"]) == 0
    assert main(["--diff", CNN, str(out)]) == 0
    text = capsys.readouterr().out
    removed = {node.name for node in read_graph_def(CNN).node} - {node.name for node in read_graph_def(out).node}
    assert f"removed ({len(removed)}):" in text and "keras_learning_phase" in text
    added = {node.name for node in read_graph_def(out).node} - {node.name for node in read_graph_def(CNN).node}
    assert "PlaceholderWithDefault" in text and f"added ({len(added)})" in text
    assert main(["--diff", CNN]) == 2


def test_diff_shows_changed_inputs_old_to_new(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o.pb"
    assert main([CNN, "-o", str(out), "--passes", "identity", "-q"]) == 0
    assert main(["--diff", CNN, str(out)]) == 0
    text = capsys.readouterr().out
    assert "  conv/Conv2D: inputs (input_copy2, conv/kernel) -> (images, conv/kernel)\n" in text
