"""Golden before/after pairs for the passes: our FileCheck.

Each case is a pair under `tests/golden/<pass>/`:

- `<case>.pbtxt`, the input: a small text GraphDef whose first lines are comments that state how to run it::

      # passes: strip,identity      the pipeline (required)
      # inputs: x,p                 the declared inputs, comma-separated (may be empty)
      # outputs: y:0,n:0            the declared outputs, comma-separated (required)
      # runnable: no (why)          only for graphs TensorFlow cannot execute; give the reason

  Other leading `#` lines are free text saying what the case shows.
- `<case>.expected.txt`, the exact expected output in the one-line-per-node textual form that `str(graph)` prints
  (`optimizer.printer`): ops, names, input wiring, every attr, constants by dtype, shape and values (or a hash of
  a large one), the library's functions.

For each pair the runner loads the input with `optimizer.load`, runs the pipeline with `optimizer.optimize`, and
requires `str(graph)` of the result to equal the expected file. Unless the case says `# runnable: no`, it also
executes the input and the output in TensorFlow (`optimizer.verify.verify`, a few seeds) and requires equal
outputs; and it checks that running the pipeline a second time changes nothing.

To (re)write the expected files after an intended change, run

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/passes/test_golden.py

then read the diff of `tests/golden/` before committing it: the expected files are the tests.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import optimizer
from optimizer.graph_io import read_graph_def
from optimizer.verify import FAILED, NOT_RUN, verify

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
EXPECTED_SUFFIX = ".expected.txt"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SEEDS = (0, 1, 2, 3)
_HEADER_LINE = re.compile(r"^#\s*(?P<key>passes|inputs|outputs|runnable)\s*:\s*(?P<value>.*?)\s*$")


@dataclass(frozen=True)
class Case:
    """One golden pair and the header of its input file."""

    source: Path
    passes: str
    inputs: list[str]
    outputs: list[str]
    runnable: bool

    @property
    def expected(self) -> Path:
        return expected_path(self.source)


def expected_path(source: Path) -> Path:
    return source.with_name(source.name[: -len(".pbtxt")] + EXPECTED_SUFFIX)


def _names(value: str) -> list[str]:
    return [name.strip() for name in value.split(",") if name.strip()]


def read_case(source: Path) -> Case:
    """Parse the header comments of `source`; a missing pipeline or output list is an error in the case."""
    header: dict[str, str] = {}
    for line in source.read_text().splitlines():
        if not line.startswith("#"):
            break
        match = _HEADER_LINE.match(line)
        if match:
            header[match["key"]] = match["value"]
    for key in ("passes", "outputs"):
        if not header.get(key):
            raise ValueError(f"{source}: the header has no '# {key}:' line")
    runnable = header.get("runnable", "yes")
    if runnable.startswith("no"):
        if not runnable[2:].strip(" ()"):
            raise ValueError(f"{source}: '# runnable: no' must say why")
    elif runnable != "yes":
        raise ValueError(f"{source}: '# runnable:' must be 'yes' or 'no (reason)', not {runnable!r}")
    return Case(
        source,
        header["passes"],
        _names(header.get("inputs", "")),
        _names(header["outputs"]),
        not runnable.startswith("no"),
    )


def _sources() -> list[Path]:
    return sorted(GOLDEN.glob("*/*.pbtxt"))


CASES = [pytest.param(source, id=f"{source.parent.name}/{source.stem}") for source in _sources()]


def _load_and_optimize(case: Case) -> tuple[optimizer.Graph, optimizer.RunReport]:
    graph = optimizer.load(case.source, case.inputs, case.outputs)
    return graph, optimizer.optimize(graph, case.passes)


@pytest.mark.parametrize("source", CASES)
def test_golden(source: Path) -> None:
    case = read_case(source)
    graph, _ = _load_and_optimize(case)
    text = str(graph) + "\n"
    if UPDATE:
        case.expected.write_text(text)
    if not case.expected.exists():
        pytest.fail(f"{case.expected.name} is missing; write it with UPDATE_GOLDEN=1 and review it")
    expected = case.expected.read_text()
    if text != expected:
        diff = difflib.unified_diff(expected.splitlines(), text.splitlines(), "expected", "actual", lineterm="")
        pytest.fail(f"{case.source.name} with `{case.passes}` differs from {case.expected.name}:\n" + "\n".join(diff))
    actual = graph.to_graph_def()
    original = read_graph_def(case.source)
    if not case.runnable:
        # Keep the marker honest: one of the two graphs must really fail to run.
        result = verify(original, actual, graph.inputs, graph.outputs)
        assert result.status in (NOT_RUN, FAILED), "the case runs: drop its '# runnable: no'"
        return
    for seed in SEEDS:
        result = verify(original, actual, graph.inputs, graph.outputs, seed=seed)
        assert result.skipped is None, f"seed {seed}: {result.skipped} (mark the case '# runnable: no (why)')"
        failed = [check for check in result.outputs if not check.passed]
        assert not failed, f"seed {seed}: outputs differ after `{case.passes}`: {failed}"


@pytest.mark.parametrize("source", CASES)
def test_golden_pipeline_is_idempotent(source: Path) -> None:
    case = read_case(source)
    graph, _ = _load_and_optimize(case)
    once = graph.to_graph_def()
    again = optimizer.optimize(graph, case.passes)
    assert not again.changed, [record for record in again.records if record.changed]
    assert graph.to_graph_def() == once


def test_every_expected_file_has_an_input() -> None:
    expected = {expected_path(path) for path in _sources()}
    assert set(GOLDEN.glob(f"*/*{EXPECTED_SUFFIX}")) <= expected


def test_golden_folders_are_named_after_passes() -> None:
    folders = {path.parent.name for path in _sources()}
    assert {"identity", "prune", "strip"} <= folders
    for folder in folders:
        optimizer.get_pass(folder)  # an unknown name raises, listing the known ones
