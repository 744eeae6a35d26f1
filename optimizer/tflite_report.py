"""The TFLite part of the run report: the `.tflite` written, and TensorFlow alone's conversion beside it.

`TfliteFigures` holds the numbers (`--report-json` writes them under `tflite`); `tflite_table` prints size,
operator count and whether the outputs match the original, for this tool's model and, with
`--compare-converter`, for the model TensorFlow makes without it (`optimizer.tflite_baseline`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.table import Table

from optimizer.tflite_baseline import Baseline
from optimizer.verify import NOT_RUN, Verification


@dataclass
class TfliteFigures:
    """The `.tflite` this run made: its size, operator count and converter options; the baseline if compared."""

    bytes: int
    operators: int
    options: dict[str, bool] = field(default_factory=dict)
    baseline: Baseline | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "bytes": self.bytes,
            "operators": self.operators,
            "options": self.options,
            "tensorflow_alone": self.baseline.to_dict() if self.baseline else None,
        }


def _size(count: int | None) -> str:
    if count is None:
        return "-"
    if count < 1024:
        return f"{count} B"
    return f"{count / 1024:.1f} KiB" if count < 1024**2 else f"{count / 1024**2:.2f} MiB"


def _verdict(verification: Verification | None) -> str:
    if verification is None:
        return "-"
    if verification.status == NOT_RUN:
        return f"not run: {verification.skipped or 'no output was compared'}"
    if verification.passed:
        random = ", ".join(verification.random_outputs)
        return "[green]yes[/green]" + (f" (not compared, random: {random})" if random else "")
    worst = max((check.max_abs_error for check in verification.outputs), default=0.0)
    notes = "; ".join(check.note for check in verification.outputs if check.note)
    return f"[red]no[/red] (max abs err {worst:.3g}{'; ' + notes if notes else ''})"


def tflite_table(figures: TfliteFigures, verification: Verification | None) -> Table:
    """Size, operators and the outputs' verdict of the `.tflite` (its `verification`), beside TensorFlow alone's."""
    chosen = [name.replace("_", "-") for name, on in figures.options.items() if on]
    title = "TFLite" + (f" ({', '.join(chosen)})" if chosen else "")
    table = Table(title=title, title_justify="left")
    baseline = figures.baseline
    table.add_column("")
    table.add_column("this tool", justify="right")
    if baseline is not None:
        table.add_column("TensorFlow alone", justify="right")
    theirs = "-" if baseline is None or baseline.operators is None else str(baseline.operators)
    rows = [
        ("size", _size(figures.bytes), _size(baseline.size) if baseline else ""),
        ("operators", str(figures.operators), theirs),
        ("outputs match the original", _verdict(verification), _verdict(baseline.verification) if baseline else ""),
    ]
    for label, ours, theirs in rows:
        table.add_row(label, ours, *([theirs] if baseline is not None else []))
    return table


def baseline_notes(figures: TfliteFigures) -> list[str]:
    """What the report says under the table about TensorFlow alone's conversion: how, and why it failed."""
    baseline = figures.baseline
    if baseline is None:
        return []
    notes = [f"TensorFlow alone: {baseline.how}"]
    if baseline.error:
        notes.append(f"TensorFlow alone rejects the model: {baseline.error}")
    return notes
