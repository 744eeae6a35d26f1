"""Rewrite the pass table in README.md and docs/passes.md from the pass modules' docstrings (between the
pass-table markers).

.venv/bin/python scripts/pass_table.py          # rewrite README.md and docs/passes.md
.venv/bin/python scripts/pass_table.py --check  # exit 1 if either is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from optimizer.pass_docs import markdown_table  # noqa: E402

START, END = "<!-- pass-table:start -->", "<!-- pass-table:end -->"
PAGES = (ROOT / "README.md", ROOT / "docs" / "passes.md")


def render(page: str) -> str:
    """`page` with the text between the markers replaced by the generated table."""
    head, _, rest = page.partition(START)
    _, _, tail = rest.partition(END)
    return f"{head}{START}\n{markdown_table()}\n{END}{tail}"


def main() -> int:
    stale = [path for path in PAGES if render(path.read_text()) != path.read_text()]
    if "--check" in sys.argv:
        return 1 if stale else 0
    for path in stale:
        path.write_text(render(path.read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
