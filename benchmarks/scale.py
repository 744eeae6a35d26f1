"""Scale benchmark: our default pipeline against Grappler and optimize_for_inference on synthetic graphs, one run.

    .venv/bin/python benchmarks/scale.py [--sizes 10000,100000,400000,1000000] [--out benchmarks/results]
                                          [--grappler-max 400000] [--verify-max 100000]

`run` measures every tool on every size in a fresh process (`benchmarks.common.measure`, so peak RSS is its own):
ours (load + default pipeline + save), Grappler with its portable optimizers and `optimize_for_inference` up to
`--grappler-max` nodes, our load + save with no pass (`roundtrip`) and protobuf's own parse + serialize (the floor);
those last two take well under a second, where the machine's noise is relative, so each is the median of
`FLOOR_REPEATS` fresh processes.
Our output is verified against the input, untimed, up to `--verify-max` nodes. Every measured process runs right
after `warm_gib(size)` GiB of memory have been written (`benchmarks.common.warm_memory`: on this virtual machine
memory first touched costs the host's time, not the tool's). `markdown` renders the rows as docs/benchmarks.md's table;
`main` writes `scale.md` and `scale.json`.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import RESULTS, Job, measure, verify_result, write_results  # noqa: E402

SIZES = (10_000, 100_000, 400_000, 1_000_000)
FLOOR_REPEATS = 3
WARM_GIB_PER_NODE = 1 / 100_000
WARM_GIB_MAX = 4.0


def warm_gib(size: int) -> float:
    """The memory warmed before each measurement at `size` nodes: more than any tool grows by (about 2.6 GiB for
    Grappler at 400k nodes, 2 GiB for ours at 1M), in proportion to the size up to `WARM_GIB_MAX`."""
    return min(WARM_GIB_MAX, size * WARM_GIB_PER_NODE)


def _median(tool: str, job: Job, repeats: int) -> dict[str, Any]:
    """`measure(tool, [job])` in `repeats` fresh processes: the figures of the run with the median time."""
    runs = [measure(tool, [job])[0] for _ in range(repeats)]
    timed = sorted((figures for figures in runs if "seconds" in figures), key=lambda figures: figures["seconds"])
    return {**timed[len(timed) // 2], "runs": len(timed)} if timed else runs[0]


def run(sizes: list[int], grappler_max: int = 400_000, verify_max: int = 100_000) -> list[dict[str, Any]]:
    """One row per size: `size`, `bytes` of the file, and each tool's figures (see `benchmarks.common`; `{}` for a
    tool not run, `{"error": ...}` for one that failed), ours with `verified` and `verify_seconds` where checked."""
    from benchmarks.synthetic import synthetic_graph

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for size in sizes:
            path = Path(folder) / f"synthetic_{size}.pb"
            path.write_bytes(synthetic_graph(size).SerializeToString())
            source = Job(str(path), ["x"], ["y"], warm_gib=warm_gib(size))
            ours = replace(source, result=str(Path(folder) / "ours.pb")) if size <= verify_max else source
            compared = ("grappler", "optimize_for_inference", "edits") if size <= grappler_max else ()
            others = ("protobuf", "roundtrip", *compared)
            row: dict[str, Any] = {"size": size, "bytes": path.stat().st_size, "ours": measure("ours", [ours])[0]}
            if ours.result is not None and "error" not in row["ours"]:
                row["ours"].update(verify_result(ours))
            row.update({"grappler": {}, "optimize_for_inference": {}, "edits": {}})
            for tool in others:
                floor = tool in ("protobuf", "roundtrip")
                row[tool] = _median(tool, source, FLOOR_REPEATS) if floor else measure(tool, [source])[0]
            rows.append(row)
            print(f"scale: {size:,} nodes done", file=sys.stderr, flush=True)
    return rows


def _fmt(figures: dict[str, Any], key: str = "seconds", digits: int = 2) -> str:
    return "-" if key not in figures else f"{figures[key]:.{digits}f}"


def _ratio(ours: dict[str, Any], grappler: dict[str, Any]) -> str:
    return f"{ours['seconds'] / grappler['seconds']:.2f}" if "seconds" in ours and "seconds" in grappler else "-"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The docs/benchmarks.md table of `run`'s rows."""
    lines = [
        "| nodes | ours: load + passes + save (s) | Grappler (s) | optimize_for_inference (s) | ours / Grappler "
        "| edit floor (s) | edit floor / Grappler "
        "| nodes after: ours / Grappler / ofi | peak RSS ours / Grappler (MiB) | round trip / protobuf |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        ours, grappler, ofi, edits = row["ours"], row["grappler"], row["optimize_for_inference"], row.get("edits", {})
        ratio, floor = _ratio(ours, grappler), _ratio(edits, grappler)
        if "seconds" in edits and not edits.get("matches"):
            floor = "replay differs"  # an edit the recorder missed: no floor
        trip = row["roundtrip"].get("seconds", 0) / max(row["protobuf"].get("seconds", 1e-9), 1e-9)
        lines.append(
            f"| {row['size']:,} | {_fmt(ours)} ({_fmt(ours, 'load_seconds')} + {_fmt(ours, 'passes_seconds')} + "
            f"{_fmt(ours, 'save_seconds')}) | {_fmt(grappler)} | {_fmt(ofi)} | {ratio} | {_fmt(edits)} | {floor} | "
            f"{ours.get('nodes', '-')} / {grappler.get('nodes', '-')} / {ofi.get('nodes', '-')} | "
            f"{_fmt(ours, 'rss_mib', 0)} / {_fmt(grappler, 'rss_mib', 0)} | {trip:.1f}x |"
        )
    warmed = ", ".join(f"{warm_gib(row['size']):g} GiB at {row['size']:,}" for row in rows)
    lines.append("")
    lines.append(f"Memory written just before each measured process (see `benchmarks.common.warm_memory`): {warmed}.")
    lines.append("")
    lines.append(
        "Edit floor: load, then only the graph edits our pipeline made (recorded, replayed without the analysis that "
        "found them, and checked to give the same output), then save: no rewrite of the passes' analysis can go "
        "below it in this IR (see `benchmarks/edit_floor.py`)."
    )
    per_node = {row["size"]: row["ours"]["seconds"] / row["size"] for row in rows if "seconds" in row["ours"]}
    if 100_000 in per_node and 1_000_000 in per_node:
        lines.append("")
        lines.append(f"Time per node at 1M / at 100k: {per_node[1_000_000] / per_node[100_000]:.2f}.")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--grappler-max", type=int, default=400_000)
    parser.add_argument("--verify-max", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    rows = run([int(text) for text in args.sizes.split(",")], args.grappler_max, args.verify_max)
    write_results(args.out, "scale", rows, markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
