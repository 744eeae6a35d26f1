"""Batch mode: optimize many models, in worker processes, with a progress bar and a summary table.

Contract
- `output_paths` maps each input to a file in the output folder: its own file name (with the output format's
  extension); inputs that share a name get their parent folders' names prefixed, so no output overwrites another.
- `run_batch` calls `work(task)` for every task in `jobs` child processes (`optimizer.sandbox.Worker`: spawned,
  each reused for the next task), shows a progress bar, and returns the results in task order. A task whose child
  crashes, runs longer than `limits.seconds` or grows past `limits.memory` is that task's result,
  `{"code": 2, "error": line}` (3 when the child exited by itself: a bug), and its child is replaced; the other
  tasks go on.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from optimizer.errors import OptimizerError
from optimizer.exit_codes import EXIT_INTERNAL, EXIT_USAGE
from optimizer.sandbox import ChildFailure, Limits, Worker

Task = TypeVar("Task")


def output_paths(inputs: Sequence[str], folder: str, extension: str) -> list[str]:
    """One output path in `folder` per input, unique even when inputs share a file name."""
    stems = [Path(path).stem if Path(path).suffix else Path(path).name for path in inputs]
    chosen: list[str] = []
    for path, stem in zip(inputs, stems, strict=True):
        name = stem
        parents = Path(os.path.abspath(path)).parent.parts[::-1]
        depth = 0
        while stems.count(stem) > 1 and (name in chosen or depth == 0) and depth < len(parents):
            name = f"{parents[depth]}_{name}"
            depth += 1
        chosen.append(name)
    outputs = [os.path.join(folder, f"{name}.{extension}") for name in chosen]
    first: dict[str, str] = {}
    for path, output in zip(inputs, outputs, strict=True):
        key = os.path.normcase(os.path.realpath(output))
        if key in first:
            raise OptimizerError(
                f"batch outputs collide: {first[key]} and {path} would both be written to {output}; "
                "rename one or optimize them apart"
            )
        first[key] = path
    return outputs


def run_batch(
    work: Callable[[Task], dict[str, Any]],
    tasks: Sequence[Task],
    jobs: int,
    describe: Callable[[Task], str],
    console: Console,
    limits: Limits | None = None,
) -> list[dict[str, Any]]:
    """Run `work` over `tasks` with a progress bar; results in task order (see the module docstring)."""
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    workers: queue.SimpleQueue[Worker] = queue.SimpleQueue()
    for _ in range(max(jobs, 1)):
        worker = Worker()
        worker.limits = limits or Limits()
        workers.put(worker)

    def isolated(task: Task) -> dict[str, Any]:
        worker = workers.get()
        try:
            return dict(worker.call("optimizing", work, task))
        except ChildFailure as failure:
            return {"code": EXIT_INTERNAL if failure.internal else EXIT_USAGE, "error": str(failure)}
        finally:
            workers.put(worker)

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with (
            Progress(*columns, console=console, transient=True, disable=console.quiet) as progress,
            concurrent.futures.ThreadPoolExecutor(max_workers=max(jobs, 1)) as pool,
        ):
            bar = progress.add_task("optimizing", total=len(tasks))
            futures = {pool.submit(isolated, task): index for index, task in enumerate(tasks)}
            for future in concurrent.futures.as_completed(futures):
                index = futures[future]
                results[index] = future.result()
                progress.update(bar, description=f"done {describe(tasks[index])}")
                progress.advance(bar)
    finally:
        while not workers.empty():
            workers.get().stop()
    return [result or {"code": EXIT_INTERNAL, "error": "no result"} for result in results]
