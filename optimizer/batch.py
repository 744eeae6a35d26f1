"""Batch mode: optimize many models, in worker processes, with a progress bar and a summary table.

Contract
- `output_paths` maps each input to a file in the output folder: its own file name (with the output format's
  extension); inputs that share a name get their parent folders' names prefixed, so no output overwrites another.
- `run_batch` calls `work(task)` for every task, in `jobs` processes (spawned, so TensorFlow starts clean in each;
  `jobs=1` runs in this process), shows a progress bar, and returns the results in task order. A task whose
  worker dies is reported as such; the others go on.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from optimizer.errors import OptimizerError

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
) -> list[dict[str, Any]]:
    """Run `work` over `tasks` with a progress bar; results in task order (a dead worker gives `{"error": ...}`)."""
    results: list[dict[str, Any] | None] = [None] * len(tasks)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=console.quiet) as progress:
        bar = progress.add_task("optimizing", total=len(tasks))
        if jobs <= 1:
            for index, task in enumerate(tasks):
                progress.update(bar, description=f"optimizing {describe(task)}")
                results[index] = work(task)
                progress.advance(bar)
        else:
            context = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
                futures = {pool.submit(work, task): index for index, task in enumerate(tasks)}
                for future in concurrent.futures.as_completed(futures):
                    index = futures[future]
                    try:
                        results[index] = future.result()
                    except (Exception, SystemExit) as error:  # a worker that died (native crash, killed, exit)
                        results[index] = {"code": 3, "error": f"the worker process died: {error}"}
                    progress.update(bar, description=f"done {describe(tasks[index])}")
                    progress.advance(bar)
    return [result or {"code": 3, "error": "no result"} for result in results]
