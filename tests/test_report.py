"""`optimizer/report.py`: the run report, what it prints and what `--report-json` gets."""

from __future__ import annotations

import json

from rich.console import Console

from optimizer.manager import RunReport
from optimizer.report import OptimizeReport, render
from optimizer.variables import Tally, VariableAccount
from optimizer.verify import OutputCheck, Verification


def _report(variables: VariableAccount | None) -> OptimizeReport:
    run = RunReport("freeze", op_counts_before={"VariableV2": 3}, op_counts_after={"Const": 1})
    run.constant_bytes_after = 2048
    return OptimizeReport("in.meta", "out.pb", ["x:0"], ["y:0"], run, 4096, 1024, variables=variables)


def _printed(report: OptimizeReport) -> str:
    console = Console(width=160, record=True, color_system=None)
    render(report, console)
    return console.export_text()


def test_the_variables_table_says_what_was_frozen_and_what_was_not_carried_over() -> None:
    account = VariableAccount(
        "model.ckpt-3",
        stored=Tally(4, 2048 + 4096 + 8 + 12),
        frozen=Tally(1, 2048),
        dropped={
            "step counters": Tally(1, 8),
            "optimizer slots": Tally(1, 4096),
            "other training-only state": Tally(1, 12),
        },
    )
    text = _printed(_report(account))
    rows = [line for line in text.splitlines() if "│" in line]
    labels = [row.split("│")[1].strip() for row in rows]
    start = labels.index("in the source")
    assert labels[start : start + 6] == [
        "in the source",
        "frozen into constants",
        "not carried over: optimizer slots",
        "not carried over: step counters",
        "not carried over: other training-only state",
        "not carried over",
    ]
    assert "Variables (model.ckpt-3)" in text
    assert [cell.strip() for cell in rows[start + 2].split("│")[2:4]] == ["1", "4.0 KiB"]
    assert [cell.strip() for cell in rows[start + 5].split("│")[2:4]] == ["3", "-4.0 KiB"]
    data = json.loads(json.dumps(_report(account).to_dict()))
    assert data["variables"]["not_carried_over"]["bytes"] == 4096 + 8 + 12
    assert list(data["variables"]["not_carried_over"]["by_kind"]) == [
        "optimizer slots",
        "step counters",
        "other training-only state",
    ]
    assert "constant bytes" in text


def test_without_variable_values_there_is_no_variables_table() -> None:
    assert "Variables" not in _printed(_report(None))
    assert _report(None).to_dict()["variables"] is None


def test_the_verdict_line_says_passed_failed_not_run_or_turned_off() -> None:
    report = _report(None)
    assert "verification: skipped (--no-verify)" in _printed(report)
    report.verification = Verification(skipped="the graph declares no outputs", remedy="give --outputs")
    assert "verification: not run: the graph declares no outputs" in _printed(report)
    data = json.loads(json.dumps(report.to_dict(), default=float))["verification"]
    assert (data["status"], data["passed"], data["remedy"]) == ("not run", False, "give --outputs")
    report.verification = Verification()  # nothing skipped, yet nothing compared: not a pass either
    assert "verification: not run: no output was compared" in _printed(report)
    assert report.to_dict()["verification"]["status"] == "not run"
    report.verification = Verification(outputs=[OutputCheck("y:0", [2], "float32", 0.5, 0.5, False)])
    assert "verification: outputs differ" in _printed(report)
    assert report.to_dict()["verification"]["status"] == "failed"
    report.verification = Verification(outputs=[OutputCheck("y:0", [2], "float32", 0.0, 0.0, True)])
    assert "verification: outputs match" in _printed(report)
    assert report.to_dict()["verification"]["status"] == "passed"
