"""Bisection: find the first pass, and within it the first rewrite, after which the graph stops computing
what the original computes; write a reproducer.

Contract
- The pipeline is replayed pass by pass on a copy of the original graph (rounds unrolled when it runs to a fixed
  point), verifying after each pass against the original on the same inputs. The first pass whose result fails is
  the culprit.
- Within it, the pass is rerun from the graph as it was before it with a rewrite budget (`PassContext.max_rewrites`),
  and the smallest budget K that fails is found by binary search: the K-th rewrite is the first bad one. Passes that
  ask `ctx.allow_rewrite()` before each rewrite (all built-in ones do) support this; for others K is left unknown.
- The reproducer folder holds `model.pb` (the original graph), `before.pb` (the graph just before the bad pass),
  one `.npy` per input of the failing sample, and `reproduce.sh` with two `optimize` commands that exit 1: the whole
  pipeline on `model.pb`, and the bad pass alone on `before.pb` with `--max-rewrites K`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from optimizer.graph_io import write_graph_def
from optimizer.ir import Graph
from optimizer.manager import PassManager
from optimizer.pass_base import Pass, PassContext
from optimizer.pipeline import Pipeline
from optimizer.protos import GraphDef
from optimizer.tables import embed_tables
from optimizer.verify import Verification, verify


@dataclass
class BisectResult:
    """Where equivalence broke: the pass (its position among the passes run) and the rewrite within it."""

    pipeline: str
    rounds: int = 1
    steps_run: list[str] = field(default_factory=list)
    culprit: str | None = None
    rewrite: int | None = None
    verification: Verification | None = None
    reproducer: Path | None = None

    @property
    def found(self) -> bool:
        return self.culprit is not None

    def summary(self) -> str:
        """One line saying what was found."""
        if not self.found:
            return f"bisect: every pass of {self.pipeline!r} preserves the outputs on these inputs"
        before = ", ".join(self.steps_run[:-1]) or "nothing"
        where = f", rewrite {self.rewrite}" if self.rewrite is not None else " (its rewrites are not countable)"
        return f"bisect: the first bad pass is {self.culprit!r}{where}, after {before}"


def _unrolled(pipeline: Pipeline, rounds: int) -> list[Pass]:
    return [step for _ in range(rounds) for step in pipeline]


def _run_with_budget(before: GraphDef, graph: Graph, step: Pass, budget: int | None) -> tuple[GraphDef, int]:
    """Run `step` under a rewrite budget on a fresh graph of `before` with `graph`'s interface; return the result
    and the number of rewrites it made."""
    fresh = graph.derive(_clone(before))
    context = PassContext(max_rewrites=budget)
    PassManager([step], context=context).run(fresh)
    return fresh.to_graph_def(), context.rewrites


def _clone(graph_def: GraphDef) -> GraphDef:
    copy = GraphDef()
    copy.CopyFrom(graph_def)
    return copy


def bisect(
    graph: Graph,
    pipeline: str | Sequence[Pass] | Pipeline,
    *,
    rounds: int = 1,
    reproducer_dir: str | Path | None = None,
    **verify_options: Any,
) -> BisectResult:
    """Find the first pass and rewrite of `pipeline` that break `graph`'s outputs (`graph` is not modified).

    `rounds` unrolls a fixed-point run; `verify_options` go to `optimizer.verify.verify` (seed, samples, feeds,
    tolerances, ...)."""
    steps = _unrolled(Pipeline.of(pipeline), rounds)
    result = BisectResult(pipeline=str(Pipeline.of(pipeline)), rounds=rounds)
    original = graph.to_graph_def()
    current = graph.copy()
    embed_tables(current)  # as `optimizer.optimize` does before its passes
    verify_options = {**verify_options, "candidate_init": current.init}
    for step in steps:
        before = current.to_graph_def()
        PassManager([step]).run(current)
        result.steps_run.append(str(step))
        check = verify(original, current.to_graph_def(), graph.inputs, graph.outputs, **verify_options)
        if check.passed:
            continue
        result.culprit, result.verification = str(step), check
        options = {**verify_options, "feeds": check.failing_feeds} if check.failing_feeds else verify_options
        result.rewrite = _first_bad_rewrite(original, before, graph, step, options)
        if reproducer_dir is not None:
            result.reproducer = write_reproducer(Path(reproducer_dir), graph, original, before, result, check)
        return result
    return result


def _first_bad_rewrite(
    original: GraphDef, before: GraphDef, graph: Graph, step: Pass, options: Mapping[str, Any]
) -> int | None:
    """The smallest rewrite budget under which `step` breaks the outputs, or None if budgets do not apply."""

    def fails(budget: int) -> bool:
        candidate, _ = _run_with_budget(before, graph, step, budget)
        return verify(original, candidate, graph.inputs, graph.outputs, **options).failed

    _, total = _run_with_budget(before, graph, step, None)
    if total == 0 or not fails(total):
        return None
    low, high = 1, total  # invariant: fails(high); every budget below low passes
    while low < high:
        middle = (low + high) // 2
        if fails(middle):
            high = middle
        else:
            low = middle + 1
    return low


def _file_name(tensor: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", tensor) + ".npy"


def write_reproducer(
    folder: Path, graph: Graph, original: GraphDef, before: GraphDef, result: BisectResult, check: Verification
) -> Path:
    """Write the reproducer described in the module docstring into `folder`; return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    write_graph_def(original, folder / "model.pb")
    write_graph_def(before, folder / "before.pb")
    common = [
        "--inputs",
        ",".join(str(tensor) for tensor in graph.inputs),
        "--outputs",
        ",".join(str(tensor) for tensor in graph.outputs),
    ]
    for name, value in (check.failing_feeds or {}).items():
        np.save(folder / _file_name(name), np.asarray(value))
        common += ["--input-data", f"{name}={_file_name(name)}"]
    whole = ["optimize", "model.pb", "--passes", result.pipeline, *common]
    if result.rounds > 1:
        whole.append("--fixed-point")
    alone = ["optimize", "before.pb", "--passes", str(result.culprit), *common]
    if result.rewrite is not None:
        alone += ["--max-rewrites", str(result.rewrite)]
    script = [
        "#!/usr/bin/env bash",
        f"# {result.summary()}",
        "# Each command below exits 1: the optimized graph differs from the original on the saved inputs.",
        'cd "$(dirname "$0")"',
        shlex.join(whole),
        shlex.join(alone),
        "",
    ]
    (folder / "reproduce.sh").write_text("\n".join(script))
    (folder / "reproduce.sh").chmod(0o755)
    return folder
