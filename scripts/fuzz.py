"""Fuzz the `optimize` command with hostile models (tests/hostile.py) and count how each run ends.

    .venv/bin/python scripts/fuzz.py --cases 2000 [--seed 0] [--timeout 60] [--json fuzz.json]

Each case is written to a file and run through `optimize CASE -o OUT` (default pipeline, verification on) in a
worker process that handles cases one after another; a worker that dies (a crash in native code) or stops answering
(a hang) is replaced, and the case is counted as such. Outcomes:
- `clean error`: exit 2 with one line on stderr naming the file;
- `correct`: exit 0 with verification passed; `not verified`: exit 4, written, with one line on stderr saying why;
- `wrong result` (exit 1), `internal error` (exit 3), `traceback`, `crash`, `hang`, `messy error`: bugs.
The exit code is 0 only when no case is a bug.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import multiprocessing
import queue
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BUGS = ("wrong result", "internal error", "traceback", "messy error", "crash", "hang")


def _classify(path: str, code: int, out: str, err: str) -> str:
    if code == 2:
        return "clean error" if err.count("\n") == 1 and path in err else "messy error"
    if code == 0:
        return "correct" if "outputs match" in out else "messy error"
    if code == 4:  # written, not verified: one line says why
        clean = err.count("\n") == 1 and err.startswith("optimize: warning:") and "verification: not run" in out
        return "not verified" if clean else "messy error"
    return {1: "wrong result", 3: "internal error"}.get(code, "traceback")


def _worker(tasks: multiprocessing.Queue, results: multiprocessing.Queue, folder: str) -> None:
    from optimizer.cli import main

    while True:
        task = tasks.get()
        if task is None:
            return
        index, data = task
        model = Path(folder) / f"case{index}.pb"
        model.write_bytes(data)
        out, err = io.StringIO(), io.StringIO()
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = main([str(model), "-o", str(Path(folder) / f"out{index}.pb")])
        except BaseException as error:  # a traceback reaching the user is what we hunt
            results.put((index, "traceback", f"{type(error).__name__}: {error}"))
            continue
        outcome = _classify(str(model), code, out.getvalue(), err.getvalue())
        results.put((index, outcome, err.getvalue().strip()[:300]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds one case may take")
    parser.add_argument("--json", type=Path, help="write every case's outcome here")
    args = parser.parse_args()

    import numpy as np

    from optimizer.graph_io import read_graph_def
    from tests.hostile import hostile_cases

    seeds = [read_graph_def(ROOT / "fixtures" / "small_cnn.pb")]
    corpus = ROOT.parent / "shared" / "corpus" / "tf2onnx-cases"
    if corpus.is_dir():
        seeds += [read_graph_def(case / "graph.pb") for case in sorted(corpus.iterdir())[::20]]
    cases = list(hostile_cases(seeds, np.random.default_rng(args.seed), args.cases))
    context = multiprocessing.get_context("spawn")
    outcomes: dict[int, tuple[str, str, str]] = {}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        pending = list(enumerate(cases))
        while pending:
            tasks, results = context.Queue(), context.Queue()
            worker = context.Process(target=_worker, args=(tasks, results, folder), daemon=True)
            worker.start()
            for index, (_, data) in pending:
                tasks.put((index, data))
            tasks.put(None)
            slack = 60.0  # the first answer of a worker includes importing TensorFlow
            while pending:
                index, (kind, _) = pending[0]
                try:
                    done, outcome, detail = results.get(timeout=args.timeout + slack)
                except queue.Empty:
                    outcome, detail, done = ("hang" if worker.is_alive() else "crash"), "", index
                    worker.kill()
                slack = 0.0
                kind = cases[done][0]
                outcomes[done] = (kind, outcome, detail)
                pending = [item for item in pending if item[0] != done]
                if outcome in ("hang", "crash"):
                    break
            worker.join(timeout=5)
    seconds = time.perf_counter() - start
    counts = collections.Counter(outcome for _, outcome, _ in outcomes.values())
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for kind, outcome, _ in outcomes.values():
        by_kind[kind][outcome] += 1
    print(f"{len(outcomes)} cases in {seconds:.0f} s from {len(seeds)} seed models")
    for outcome, count in counts.most_common():
        print(f"  {outcome}: {count}")
    for kind in sorted(by_kind):
        print(f"  {kind}: {dict(by_kind[kind])}")
    for index, (kind, outcome, detail) in sorted(outcomes.items()):
        if outcome in BUGS:
            print(f"BUG case {index} ({kind}): {outcome}: {detail}")
    if args.json:
        args.json.write_text(json.dumps({str(i): list(v) for i, v in sorted(outcomes.items())}, indent=1))
    return 1 if any(counts[bug] for bug in BUGS) else 0


if __name__ == "__main__":
    sys.exit(main())
