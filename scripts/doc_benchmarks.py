"""Copy the benchmark tables of `benchmarks/results/*.md` into `docs/benchmarks.md`, and the headline rows of the
summary into the README.

    .venv/bin/python scripts/doc_benchmarks.py [--check]

Each results file replaces the block of `docs/benchmarks.md` that starts with the same first line prefix
(`SECTIONS`): that line, the first table after it, and the lines of text that follow the table in the results file
(the scale notes), as far as the page has them. The README keeps only the summary's headline rows (`_headline_row`),
between its benchmark-headline markers. `--check` exits 1 when either file differs from the results instead of
writing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGE = ROOT / "docs" / "benchmarks.md"
RESULTS = ROOT / "benchmarks" / "results"
SECTIONS = {
    "summary.md": "One run of `benchmarks/all.py`",
    "models.md": "| model (Keras 3",
    "corpus.md": "Corpus: ",
    "scale.md": "| nodes | ours:",
}
START, END = "<!-- benchmark-headline:start -->", "<!-- benchmark-headline:end -->"


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


def spliced(page: str) -> str:
    """`page` (docs/benchmarks.md) with every section replaced by its results file."""
    lines = page.split("\n")
    for file, prefix in SECTIONS.items():
        new = (RESULTS / file).read_text().strip("\n").split("\n")
        trailers = [line[:20] for line in new[_block_end(new, 0, []) :] if line.strip()]
        start = next(index for index, line in enumerate(lines) if line.startswith(prefix))
        lines[start : _block_end(lines, start, trailers)] = new
    return "\n".join(lines)


def _headline_row(cells: list[str]) -> bool:
    """The rows the README shows: the largest synthetic graph Grappler also ran, the Keras total, the corpus."""
    suite, graph = cells[0], cells[1]
    return (suite == "synthetic" and graph == "400,000 nodes") or graph.startswith("all ") or suite == "corpus"


def headline() -> str:
    """The summary table's header and headline rows."""
    table = [line for line in (RESULTS / "summary.md").read_text().split("\n") if line.startswith("|")]
    rows = [line for line in table[2:] if _headline_row([cell.strip() for cell in line.strip("|").split("|")])]
    return "\n".join(table[:2] + rows)


def with_headline(readme: str) -> str:
    """`readme` with the text between the benchmark-headline markers replaced by `headline()`."""
    head, _, rest = readme.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{headline()}\n{END}{tail}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    updates = {PAGE: spliced(PAGE.read_text()), README: with_headline(README.read_text())}
    if args.check:
        return 0 if all(path.read_text() == text for path, text in updates.items()) else 1
    for path, text in updates.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
