"""Every comparison with Grappler in one run: synthetic graphs, Keras applications and the outside corpus.

    .venv/bin/python benchmarks/all.py [--sizes 10000,100000,400000,1000000] [--names MobileNetV2,...]
                                        [--corpus ../shared/corpus/tf2onnx-cases] [--grappler-max 400000]
                                        [--out benchmarks/results] [--quick]

Runs `benchmarks.scale`, `benchmarks.models` and `benchmarks.corpus` one after the other, each writing its own
`.md`/`.json` into `--out` as when run alone, then writes `summary.md` (the overview in docs/) and `summary.json`
(the same rows with the run's date, commit, TensorFlow version and pipeline, for comparisons over time): one row
per synthetic size, per Keras application plus their total, and the corpus total, each with our wall time (load +
passes + save; verification is separate and untimed), Grappler's and optimize_for_inference's, the ratio
ours/Grappler, the peak RSS of ours and of Grappler, and node counts after each tool. A corpus that is absent is
skipped with a note; a suite that fails is reported and left out, and the exit status is then 1. `--quick` (for a
check, not for figures) takes sizes 10000, MobileNetV2 and the first 20 corpus cases unless given otherwise, and
writes into `benchmarks/results/quick` unless `--out` is given.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks import corpus, models, scale  # noqa: E402
from benchmarks.common import GRAPPLER_OPTIMIZERS, RESULTS, write_results  # noqa: E402

QUICK_CASES = 20


def _row(suite: str, graph: str, nodes: int | None, tools: list[dict[str, Any]], checked: str) -> dict[str, Any]:
    """A summary row from the figures of ours, Grappler and optimize_for_inference (`{}` where not run)."""
    ours, grappler, ofi = tools
    row: dict[str, Any] = {"suite": suite, "graph": graph, "nodes": nodes}
    for name, figures in (("ours", ours), ("grappler", grappler), ("ofi", ofi)):
        row[f"{name}_seconds"] = figures.get("seconds")
        row[f"{name}_nodes"] = figures.get("nodes")
        row[f"{name}_rss_mib"] = figures.get("rss_mib")
    row["ratio"] = ours["seconds"] / grappler["seconds"] if "seconds" in ours and "seconds" in grappler else None
    row["checked"] = checked
    return row


def _total(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """Seconds and nodes summed, RSS the largest; a key missing from any is missing from the total."""
    total = {key: sum(f[key] for f in figures) for key in ("seconds", "nodes") if all(key in f for f in figures)}
    if all("rss_mib" in f for f in figures):
        total["rss_mib"] = max(f["rss_mib"] for f in figures)
    return total


def _checked(figures: dict[str, Any]) -> str:
    return "-" if "verified" not in figures else "yes" if figures["verified"] else "NO"


def summary_rows(
    scaled: list[dict[str, Any]] | None, keras: list[dict[str, Any]] | None, outside: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """One row per synthetic size, per Keras application (and their total when more than one), and the corpus."""
    rows = []
    for row in scaled or []:
        tools = [row["ours"], row["grappler"], row["optimize_for_inference"]]
        rows.append(_row("synthetic", f"{row['size']:,} nodes", row["size"], tools, _checked(row["ours"])))
    for row in keras or []:
        tools = [row[tool] for tool in models.TOOLS]
        rows.append(_row("Keras", row["model"], row["frozen_nodes"], tools, _checked(row["ours"])))
    if keras and len(keras) > 1:
        tools = [_total([row[tool] for row in keras]) for tool in models.TOOLS]
        nodes = sum(row["frozen_nodes"] or 0 for row in keras)
        equal = sum(bool(row["ours"].get("verified")) for row in keras)
        rows.append(_row("Keras", f"all {len(keras)} models", nodes, tools, f"{equal} / {len(keras)}"))
    if outside is not None:
        total, rss = corpus.totals(outside), outside["peak_rss_mib"]
        tools = [
            {"seconds": total[f"{tool}_seconds"], "nodes": total[f"{tool}_nodes"], "rss_mib": rss[tool]}
            for tool in ("ours", "grappler")
        ]
        count = f"{total['cases']} cases" + (f" ({total['failed']} failed, left out)" if total["failed"] else "")
        checked = f"{total['matches_reference']} / {total['cases']} (reference)"
        rows.append(_row("corpus", count, total["nodes"], [*tools, {}], checked))
    return rows


def _cell(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The summary table with its caption."""
    lines = [
        f"One run of `benchmarks/all.py` on {meta['date']} ({meta['cpus']} CPUs), TensorFlow {meta['tensorflow']}, "
        f"default pipeline `{meta['pipeline']}`. Ours is load + passes + save (verification separate, untimed); "
        f"Grappler runs `{','.join(GRAPPLER_OPTIMIZERS)}` (the corpus: `{','.join(corpus.GRAPPLER)}`, its reference "
        "setting), one iteration; ofi is optimize_for_inference (not run on the corpus). Every tool runs in a fresh "
        "process per graph, whose peak RSS (TensorFlow included) is reported; on the corpus one process per tool "
        f"runs every case, times are summed and RSS is that process's peak. Grappler and ofi are not run above "
        f"{meta['grappler_max']:,} nodes. A Keras total sums times and nodes and takes the largest RSS. "
        '"Outputs equal": our output against the input graph on random inputs (synthetic, Keras) or against the '
        "corpus's reference outputs."
        + (f" Failed, left out: {', '.join(meta['failed'])}." if meta["failed"] else "")
        + (f" Skipped: {', '.join(meta['skipped'])}." if meta["skipped"] else ""),
        "",
        "| suite | graph | nodes | ours (s) | Grappler (s) | ofi (s) | ours / Grappler "
        "| peak RSS ours / Grappler (MiB) | nodes after: ours / Grappler / ofi | outputs equal |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['suite']} | {row['graph']} | {_count(row['nodes'])} | {_cell(row['ours_seconds'])} "
            f"| {_cell(row['grappler_seconds'])} | {_cell(row['ofi_seconds'])} | {_cell(row['ratio'])} "
            f"| {_cell(row['ours_rss_mib'], 0)} / {_cell(row['grappler_rss_mib'], 0)} "
            f"| {_count(row['ours_nodes'])} / {_count(row['grappler_nodes'])} / {_count(row['ofi_nodes'])} "
            f"| {row['checked']} |"
        )
    return "\n".join(lines)


def _meta(args: argparse.Namespace) -> dict[str, Any]:
    from optimizer import DEFAULT_PIPELINE
    from optimizer._tf import tensorflow

    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit.stdout.strip() or None,
        "tensorflow": tensorflow().__version__,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "pipeline": DEFAULT_PIPELINE,
        "grappler_max": args.grappler_max,
        "options": {key: str(value) for key, value in vars(args).items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", help=f"default {','.join(map(str, scale.SIZES))}")
    parser.add_argument("--names", help=f"default {','.join(models.NAMES)}")
    parser.add_argument("--corpus", type=Path, default=corpus.CORPUS)
    parser.add_argument("--grappler-max", type=int, default=400_000)
    parser.add_argument("--out", type=Path, help=f"default {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--quick", action="store_true", help="sizes 10000, MobileNetV2, first 20 corpus cases")
    args = parser.parse_args()
    args.sizes = args.sizes or ",".join(map(str, scale.SIZES[:1] if args.quick else scale.SIZES))
    args.names = args.names or ",".join(models.NAMES[:1] if args.quick else models.NAMES)
    args.out = args.out or (RESULTS / "quick" if args.quick else RESULTS)
    limit = QUICK_CASES if args.quick else None
    failed: list[str] = []

    def suite(name: str, work: Callable[[], Any], render: Callable[[Any], str]) -> Any:
        try:
            result = work()
        except Exception as error:
            print(f"all.py: the {name} suite failed, left out: {type(error).__name__}: {error}", file=sys.stderr)
            failed.append(name)
            return None
        write_results(args.out, name, result, render(result))
        return result

    scaled = suite(
        "scale", lambda: scale.run([int(n) for n in args.sizes.split(",")], args.grappler_max), scale.markdown
    )
    keras = suite("models", lambda: models.run(args.names.split(",")), models.markdown)
    outside, skipped = None, []
    if args.corpus.is_dir():
        outside = suite("corpus", lambda: corpus.run(args.corpus, limit), corpus.markdown)
    else:
        skipped.append(f"corpus (none at {args.corpus})")
        print(f"all.py: no corpus at {args.corpus}; the corpus suite is skipped", file=sys.stderr)
    meta = {**_meta(args), "failed": failed, "skipped": skipped}
    rows = summary_rows(scaled, keras, outside)
    write_results(args.out, "summary", {**meta, "rows": rows}, markdown(rows, meta))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
