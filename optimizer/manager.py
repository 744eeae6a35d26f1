"""The pass manager: runs a pipeline over a graph, checks invariants between passes, times and counts.

Contract
- Passes run in order; with `fixed_point=True` the whole pipeline repeats until an iteration changes nothing or
  `max_iterations` is reached. A pass is a function of the graph: in a repeat, a pass whose last run changed nothing
  (or an `idempotent` pass, whatever its last run did) is skipped, and not recorded, while the graph has not changed
  since, and the run stops as soon as every pass of the pipeline is in that state.
- `changed` is computed from the graph's mutation counter. A pass that returns a boolean contrary to it is a bug
  and fails the run.
- After each pass that changed the graph, `check_graph` checks the nodes it touched, and after the last pass of
  a run that changed anything, the whole graph (cycles included); `check=False` turns both off.
- Any failure is re-raised as `PassError` naming the pass and the passes that ran before it; with
  `keep_going=True` the graph is instead rolled back to its state before that pass, the error is recorded in the
  pass's record, and the run goes on.
- What passes remember in `graph.memo` (shapes, constant digests) is shared by the passes of one run and emptied
  when the run ends.
- Each callback in `before_pass` is called as `callback(pass_name, round)` before every pass (progress display).
- Each callback in `after_change` is called as `callback(record, graph)` after every pass that changed the graph
  (the CLI uses this for `--dump-dir` and `--print-after-change`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from optimizer._gc import gc_paused
from optimizer.errors import OptimizerError, PassError
from optimizer.invariants import check_graph
from optimizer.ir import Graph
from optimizer.pass_base import Pass, PassContext
from optimizer.pipeline import Pipeline

log = logging.getLogger(__name__)


@dataclass
class PassRecord:
    """One run of one pass."""

    name: str
    iteration: int
    seconds: float
    changed: bool
    mutations: int
    nodes_before: int
    nodes_after: int
    error: str | None = None


@dataclass
class RunReport:
    """What a pipeline run did: per-pass records and op counts before and after."""

    pipeline: str
    records: list[PassRecord] = field(default_factory=list)
    op_counts_before: dict[str, int] = field(default_factory=dict)
    op_counts_after: dict[str, int] = field(default_factory=dict)
    iterations: int = 0
    constant_bytes_before: int = 0
    constant_bytes_after: int = 0

    @property
    def nodes_before(self) -> int:
        return sum(self.op_counts_before.values())

    @property
    def nodes_after(self) -> int:
        return sum(self.op_counts_after.values())

    @property
    def changed(self) -> bool:
        return any(record.changed for record in self.records)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["nodes_before"] = self.nodes_before
        data["nodes_after"] = self.nodes_after
        return data


class PassManager:
    """Runs `pipeline` (a string, pass instances, or a Pipeline) over graphs."""

    def __init__(
        self,
        pipeline: str | Sequence[Pass] | Pipeline,
        *,
        fixed_point: bool = False,
        max_iterations: int = 10,
        check: bool = True,
        context: PassContext | None = None,
        keep_going: bool = False,
        after_change: Sequence[Callable[[PassRecord, Graph], None]] = (),
        before_pass: Sequence[Callable[[str, int], None]] = (),
    ) -> None:
        self.pipeline = Pipeline.of(pipeline)
        self.fixed_point = fixed_point
        self.max_iterations = max_iterations
        self.check = check
        self.context = context or PassContext()
        self.keep_going = keep_going
        self.after_change = list(after_change)
        self.before_pass = list(before_pass)

    def run(self, graph: Graph) -> RunReport:
        """Run the pipeline over `graph` in place and report what happened."""
        with gc_paused():
            try:
                return self._run(graph)
            finally:
                graph.memo.clear()  # what analyses remembered holds for this run only (see `Graph.memo`)

    def _run(self, graph: Graph) -> RunReport:
        names = [str(step) for step in self.pipeline]  # each pass as configured, written once per run
        report = RunReport(
            ",".join(names), op_counts_before=graph.op_counts(), constant_bytes_before=graph.constant_bytes()
        )
        done: list[str] = []
        clean_at: dict[str, int] = {}  # pass (as configured) -> mutation count after a run that left it nothing to do
        graph.take_touched()
        for iteration in range(1, (self.max_iterations if self.fixed_point else 1) + 1):
            report.iterations = iteration
            changed = False
            for step, name in zip(self.pipeline, names, strict=True):
                if all(clean_at.get(other) == graph.mutations for other in names):
                    break  # a fixed point: every pass has just seen this very graph and changed nothing
                if clean_at.get(name) == graph.mutations:
                    continue
                for announce in self.before_pass:
                    announce(name, iteration)
                record = self._run_guarded(step, name, graph, iteration, done)
                report.records.append(record)
                if record.changed:
                    for callback in self.after_change:
                        callback(record, graph)
                done.append(name)
                changed |= record.changed
                if record.error is None and (step.idempotent or not record.changed):
                    clean_at[name] = graph.mutations
            if not changed:
                break
        if self.check and report.changed:
            try:
                check_graph(graph)
            except OptimizerError as error:
                raise PassError(f"the graph is broken after {', '.join(done)}: {error}") from error
        report.op_counts_after = graph.op_counts()
        report.constant_bytes_after = graph.constant_bytes()
        return report

    def _run_guarded(self, step: Pass, name: str, graph: Graph, iteration: int, done: list[str]) -> PassRecord:
        """`_run_one`, or with `keep_going` a rollback and a recorded error when the pass fails."""
        if not self.keep_going:
            return self._run_one(step, name, graph, iteration, done)
        snapshot, nodes = graph.copy(), len(graph)
        try:
            return self._run_one(step, name, graph, iteration, done)
        except PassError as error:
            graph.restore(snapshot)
            log.warning("%s (rolled back; going on)", error)
            return PassRecord(name, iteration, 0.0, False, 0, nodes, nodes, error=str(error))

    def _run_one(self, step: Pass, name: str, graph: Graph, iteration: int, done: list[str]) -> PassRecord:
        """Run `step` (written `name`) once, check what it touched, and record it."""
        before_mutations, before_nodes = graph.mutations, len(graph)
        start = time.perf_counter()
        try:
            claimed = step.run(graph, self.context)
            mutations = graph.mutations - before_mutations
            if claimed is not None and bool(claimed) != (mutations > 0):
                raise AssertionError(f"it returned changed={claimed} but made {mutations} mutation(s)")
            if mutations and self.check:
                check_graph(graph, graph.take_touched())
        except Exception as error:
            after = f" after {', '.join(done)}" if done else " (the first pass)"
            message = f"pass {name!r} failed{after}: {error}"
            raise PassError(message, user_error=isinstance(error, OptimizerError)) from error
        seconds = time.perf_counter() - start
        log.info("%s: %d mutation(s), %d -> %d nodes, %.3fs", name, mutations, before_nodes, len(graph), seconds)
        return PassRecord(name, iteration, seconds, mutations > 0, mutations, before_nodes, len(graph))
