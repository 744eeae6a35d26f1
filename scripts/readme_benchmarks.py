"""Copy the benchmark tables of `benchmarks/results/*.md` into the README, in place of the ones there.

    .venv/bin/python scripts/readme_benchmarks.py [--check]

Each results file replaces the README block that starts with the same first line prefix (`SECTIONS`): that line,
the first table after it, and the lines of text that follow the table in the results file (the scale notes),
as far as the README has them. `--check` exits 1 when the README differs from the results instead of writing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = {
    "summary.md": "One run of `benchmarks/all.py`",
    "models.md": "| model (Keras 3",
    "corpus.md": "Corpus: ",
    "scale.md": "| nodes | ours:",
}


def _block_end(lines: list[str], start: int, trailers: list[str]) -> int:
    """The index after the block starting at `start`: through the first table, then every following line (blank
    lines between) that starts with one of `trailers`."""
    index = start
    while index < len(lines) and not lines[index].startswith("|"):
        index += 1
    while index < len(lines) and lines[index].startswith("|"):
        index += 1
    end = after = index
    while after < len(lines):
        if not lines[after].strip():
            after += 1
        elif any(lines[after].startswith(trailer) for trailer in trailers):
            end = after = after + 1
        else:
            break
    return end


def spliced(readme: str) -> str:
    """`readme` with every section replaced by its results file."""
    lines = readme.split("\n")
    for file, prefix in SECTIONS.items():
        new = (RESULTS / file).read_text().strip("\n").split("\n")
        trailers = [line[:20] for line in new[_block_end(new, 0, []) :] if line.strip()]
        start = next(index for index, line in enumerate(lines) if line.startswith(prefix))
        lines[start : _block_end(lines, start, trailers)] = new
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = README.read_text()
    result = spliced(text)
    if args.check:
        return 0 if result == text else 1
    README.write_text(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
