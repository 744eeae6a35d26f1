"""The run report: what went in, what each pass did, what came out, and whether it still computes the same.

`OptimizeReport` holds the numbers (and is what `--report-json` writes); `render` prints it as tables with rich.
What the optimization removed in bytes: the op table's "constant bytes" row (before/after), and, when the model
came with variable values (a checkpoint, a SavedModel), the variables table: what the source holds, what became
constants, what stays a variable, and what was not carried over (optimizer slots, step counters, other state).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

from optimizer.manager import RunReport
from optimizer.tflite_report import TfliteFigures, baseline_notes, tflite_table
from optimizer.variables import STATE_KINDS, VariableAccount
from optimizer.verify import NOT_RUN, Verification


@dataclass
class OptimizeReport:
    """Everything one `optimize` run measured."""

    input_path: str
    output_path: str | None
    inputs: list[str]
    outputs: list[str]
    run: RunReport
    bytes_before: int
    bytes_after: int | None = None
    verification: Verification | None = None
    notes: list[str] = field(default_factory=list)
    variables: VariableAccount | None = None
    tflite: TfliteFigures | None = None
    initializers: list[str] = field(default_factory=list)
    """Nodes to run once before the outputs (`init_all_tables`: it fills the lookup tables)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": self.input_path,
            "output": self.output_path,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "initializers": self.initializers,
            "bytes_before": self.bytes_before,
            "bytes_after": self.bytes_after,
            "run": self.run.to_dict(),
            "variables": self.variables.to_dict() if self.variables else None,
            "verification": self.verification.to_dict() if self.verification else None,
            "tflite": self.tflite.to_dict() if self.tflite else None,
            "notes": self.notes,
        }


def _size(count: int | None) -> str:
    if count is None:
        return "-"
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count:.2f} GiB"


def op_table(run: RunReport) -> Table:
    """Node counts by op, before and after, largest first, with a total row."""
    table = Table(title="Nodes by op", title_justify="left")
    for column in ("op", "before", "after", "change"):
        table.add_column(column, justify="left" if column == "op" else "right")
    before, after = run.op_counts_before, run.op_counts_after
    for op in sorted(set(before) | set(after), key=lambda op: (-before.get(op, 0), -after.get(op, 0), op)):
        old, new = before.get(op, 0), after.get(op, 0)
        table.add_row(op, str(old), str(new), _change(new - old))
    table.add_section()
    table.add_row("total", str(run.nodes_before), str(run.nodes_after), _change(run.nodes_after - run.nodes_before))
    constants = run.constant_bytes_after - run.constant_bytes_before
    table.add_row(
        "constant bytes", _size(run.constant_bytes_before), _size(run.constant_bytes_after), _change(constants, _size)
    )
    return table


def variables_table(account: VariableAccount) -> Table:
    """Where the source's variables went, in count and bytes: frozen, kept as variables, not carried over."""
    table = Table(title=f"Variables ({account.source})", title_justify="left")
    for column in ("variables", "count", "bytes"):
        table.add_column(column, justify="left" if column == "variables" else "right")
    table.add_row("in the source", str(account.stored.count), _size(account.stored.bytes))
    table.add_row("frozen into constants", str(account.frozen.count), _size(account.frozen.bytes))
    if account.kept.count:
        table.add_row("still variables", str(account.kept.count), _size(account.kept.bytes))
    for kind in STATE_KINDS:
        if kind in account.dropped:
            tally = account.dropped[kind]
            table.add_row(f"not carried over: {kind}", str(tally.count), _size(tally.bytes))
    table.add_section()
    dropped = account.not_carried
    table.add_row("not carried over", str(dropped.count), _change(-dropped.bytes, _size) or "0 B")
    return table


def _change(delta: int, unit: Callable[[int], str] = str) -> str:
    """`-3` in green (a reduction), `+2` in yellow, nothing for no change."""
    if delta == 0:
        return ""
    text = ("-" if delta < 0 else "+") + unit(abs(delta))
    return f"[green]{text}[/green]" if delta < 0 else f"[yellow]{text}[/yellow]"


def pass_table(run: RunReport) -> Table:
    """One row per pass, summed over the rounds: time, mutations, nodes removed, errors (`--keep-going`)."""
    rounds = f" ({run.iterations} rounds)" if run.iterations > 1 else ""
    table = Table(title=f"Passes: {run.pipeline or '(none)'}{rounds}", title_justify="left")
    for column in ("pass", "time", "mutations", "nodes removed", "error"):
        table.add_column(column, justify="left" if column in ("pass", "error") else "right")
    totals: dict[str, list[Any]] = {}
    for record in run.records:
        row = totals.setdefault(record.name, [0.0, 0, 0, ""])
        row[0] += record.seconds
        row[1] += record.mutations
        row[2] += record.nodes_before - record.nodes_after
        row[3] = row[3] or record.error or ""
    for name, (seconds, mutations, removed, error) in totals.items():
        table.add_row(
            name, f"{seconds * 1000:.1f} ms", str(mutations), str(removed), f"[red]{error}[/red]" if error else ""
        )
    return table


def verification_table(verification: Verification) -> Table:
    """Per output: shape, dtype, errors, failing elements, the tolerance that would pass, verdict."""
    samples = f", {verification.samples} samples" if verification.samples > 1 else ""
    table = Table(title=f"Verification (seed {verification.seed}{samples})", title_justify="left")
    columns = ("output", "shape", "dtype", "max abs err", "max rel err", "mean abs err", "failing", "atol needed")
    for column in (*columns, "result"):
        table.add_column(column, justify="left" if column in ("output", "result") else "right")
    for check in verification.outputs:
        verdict = "[green]ok[/green]" if check.passed else f"[red]FAIL[/red] {check.note}".rstrip()
        table.add_row(
            check.name,
            str(check.shape),
            check.dtype,
            f"{check.max_abs_error:.3g}",
            f"{check.max_rel_error:.3g}",
            f"{check.mean_abs_error:.3g}",
            f"{check.failing}/{check.elements}",
            f"{check.atol_needed:.3g}",
            verdict,
        )
    return table


def render_verification(verification: Verification | None, console: Console) -> None:
    """Print the verification table, its notes and the verdict (or why nothing was compared)."""
    if verification is None:
        console.print("verification: skipped (--no-verify)")
    elif verification.status == NOT_RUN:
        console.print(f"verification: not run: {verification.skipped or 'no output was compared'}", highlight=False)
    else:
        console.print(verification_table(verification))
        for note in verification.notes:
            console.print(f"note: {note}")
        verdict = "[green]outputs match[/green]" if verification.passed else "[red]outputs differ[/red]"
        if verification.random_outputs:
            verdict += f"; not compared (random): {', '.join(verification.random_outputs)}"
        console.print(f"verification: {verdict}")


def render(report: OptimizeReport, console: Console) -> None:
    """Print the report: files, ops, passes, verification."""
    target = report.output_path or "(not written)"
    before, after = _size(report.bytes_before), _size(report.bytes_after)
    console.print(f"[bold]{report.input_path}[/bold] ({before}) -> {target} ({after})")
    console.print(f"inputs: {', '.join(report.inputs) or '(none)'}")
    console.print(f"outputs: {', '.join(report.outputs) or '(none)'}")
    if report.initializers:
        console.print(
            f"initializers: {', '.join(report.initializers)} (run once before the outputs: it fills the lookup tables)",
            highlight=False,
        )
    console.print(op_table(report.run))
    if report.variables is not None:
        console.print(variables_table(report.variables))
    console.print(pass_table(report.run))
    render_verification(report.verification, console)
    if report.tflite is not None:
        console.print(tflite_table(report.tflite, report.verification))
        for note in baseline_notes(report.tflite):
            console.print(f"note: {note}", highlight=False)
    for note in report.notes:
        console.print(f"note: {note}")
