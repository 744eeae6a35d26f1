"""Benchmark the default pipeline against Grappler on the outside corpus, in one run.

    .venv/bin/python benchmarks/corpus.py [--corpus ../shared/corpus/tf2onnx-cases] [--limit N] [--out DIR]

`run` takes every case (a folder with `graph.pb`, `case.json`, `io.npz`; the first `--limit` in name order) through
our default pipeline (load + passes + save) and through Grappler with `constfold` + `function` (the corpus's own
reference setting), each tool over all cases in one fresh process (`benchmarks.common.measure`), so its peak RSS is
that process's over the whole corpus, TensorFlow included. Per case: node counts before and after each tool, the
wall time of each, and whether our output still equals the reference outputs in `io.npz` (checked untimed).
`markdown` renders docs/benchmarks.md's table (times summed over cases; ratios are ours/Grappler); `main` writes
`corpus.md` and `corpus.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS, Job, measure, write_results  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpus" / "tf2onnx-cases"
GRAPPLER = ("constfold", "function")


def cases(corpus: Path, limit: int | None = None) -> list[Path]:
    """The case folders of `corpus` in name order, the first `limit` of them."""
    return sorted(path for path in corpus.iterdir() if (path / "graph.pb").exists())[:limit]


def matches_reference(result: str, case: Path, inputs: list[str], outputs: list[str]) -> bool:
    """Whether the GraphDef at `result` computes the reference outputs of `case/io.npz` from its inputs."""
    import numpy as np

    from optimizer.graph_io import read_graph_def
    from optimizer.verify import compare, run_graph

    data = np.load(case / "io.npz", allow_pickle=True)
    feeds = {name: data[f"in{index}"] for index, name in enumerate(inputs)}
    actual = run_graph(read_graph_def(result), feeds, outputs)
    return all(compare(n, data[f"out{i}"], a).passed for i, (n, a) in enumerate(zip(outputs, actual, strict=True)))


def run(corpus: Path = CORPUS, limit: int | None = None) -> dict[str, Any]:
    """`pipeline`, `tensorflow` (version), `grappler_optimizers`, `peak_rss_mib` per tool, and `cases`: per case
    `case`, `nodes`, `ours_nodes`, `grappler_nodes`, `ours_seconds`, `grappler_seconds`, `matches_reference`, or
    `error` where a tool failed."""
    from optimizer import DEFAULT_PIPELINE
    from optimizer._tf import tensorflow
    from optimizer.graph_io import read_graph_def

    folders = cases(corpus, limit)
    with tempfile.TemporaryDirectory() as folder:
        jobs = []
        for index, case in enumerate(folders):
            spec = json.loads((case / "case.json").read_text())
            jobs.append(Job(str(case / "graph.pb"), spec["inputs"], spec["outputs"], str(Path(folder) / f"{index}.pb")))
        ours = measure("ours", jobs)
        grappler = measure("grappler", [Job(job.path, job.inputs, job.outputs) for job in jobs], GRAPPLER)
        rows: list[dict[str, Any]] = []
        for case, job, mine, theirs in zip(folders, jobs, ours, grappler, strict=True):
            row: dict[str, Any] = {"case": case.name, "nodes": len(read_graph_def(job.path).node)}
            if "error" in mine or "error" in theirs:
                rows.append({**row, "error": mine.get("error") or theirs["error"]})
                continue
            row.update(ours_nodes=mine["nodes"], grappler_nodes=theirs["nodes"])
            row.update(ours_seconds=mine["seconds"], grappler_seconds=theirs["seconds"])
            assert job.result is not None
            row["matches_reference"] = matches_reference(job.result, case, job.inputs, job.outputs)
            rows.append(row)
    return {
        "pipeline": DEFAULT_PIPELINE,
        "tensorflow": tensorflow().__version__,
        "grappler_optimizers": list(GRAPPLER),
        "peak_rss_mib": {
            tool: max((figures["rss_mib"] for figures in done if "rss_mib" in figures), default=None)
            for tool, done in (("ours", ours), ("grappler", grappler))
        },
        "cases": rows,
    }


def totals(result: dict[str, Any]) -> dict[str, Any]:
    """Sums over the cases both tools went through (`cases`, `failed` counts them and the others), the counts of
    cases where ours has fewer / the same number of nodes as Grappler, and of outputs equal to the reference."""
    done = [row for row in result["cases"] if "error" not in row]
    keys = ("nodes", "ours_nodes", "grappler_nodes", "ours_seconds", "grappler_seconds")
    return {
        **{key: sum(row[key] for row in done) for key in keys},
        "cases": len(done),
        "failed": len(result["cases"]) - len(done),
        "fewer": sum(row["ours_nodes"] < row["grappler_nodes"] for row in done),
        "same": sum(row["ours_nodes"] == row["grappler_nodes"] for row in done),
        "matches_reference": sum(row["matches_reference"] for row in done),
    }


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}" if a is not None and b else "-"


def markdown(result: dict[str, Any]) -> str:
    """The docs/benchmarks.md table of `run`'s result."""
    total, rss = totals(result), result["peak_rss_mib"]
    count, failed = total["cases"], total["failed"]
    mib = {tool: "-" if rss[tool] is None else f"{rss[tool]:.0f}" for tool in rss}
    table = [
        f"Corpus: {count + failed} cases from `../shared/corpus`, default pipeline `{result['pipeline']}`, "
        f"TensorFlow {result['tensorflow']}, one run of `benchmarks/corpus.py`; each tool runs over all cases in "
        "one fresh process, whose peak RSS (TensorFlow included) is the memory row.",
        "",
        "| measure | ours | Grappler (constfold, function) | ours / Grappler |",
        "|---|---:|---:|---:|",
        f"| nodes, all cases ({total['nodes']} before) | {total['ours_nodes']} | {total['grappler_nodes']} "
        f"| {_ratio(total['ours_nodes'], total['grappler_nodes'])} |",
        f"| cases with fewer / equal nodes than the other | {total['fewer']} / {total['same']} "
        f"| {count - total['fewer'] - total['same']} / {total['same']} | |",
        f"| wall time, all cases (s) | {total['ours_seconds']:.2f} | {total['grappler_seconds']:.2f} "
        f"| {_ratio(total['ours_seconds'], total['grappler_seconds'])} |",
        f"| peak RSS (MiB) | {mib['ours']} | {mib['grappler']} | {_ratio(rss['ours'], rss['grappler'])} |",
        f"| outputs equal to the reference `io.npz` | {total['matches_reference']} / {count} | | |",
    ]
    if failed:
        table.append(f"| cases a tool failed on (left out above) | {failed} | | |")
    return "\n".join(table)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--limit", type=int, default=None, help="only the first N cases")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"corpus.py: no corpus at {args.corpus}", file=sys.stderr)
        return 2
    result = run(args.corpus, args.limit)
    write_results(args.out, "corpus", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
