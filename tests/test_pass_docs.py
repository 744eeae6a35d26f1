"""Pass documentation comes from the pass modules: the tables of README.md and docs/passes.md are the generated one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import optimizer
from optimizer.pass_docs import contract, markdown_table, options, summary

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", optimizer.pass_names())
def test_every_pass_has_a_summary_and_a_contract(name: str) -> None:
    assert contract(name).startswith(f"`{name}`: ")
    assert "Contract" in contract(name) or len(contract(name).splitlines()) > 5
    assert summary(name) and not summary(name).startswith("`")


def test_options_show_defaults() -> None:
    assert options("fold") == "max-bytes=10485760, max-growth=0" and options("prune") == "-"


def test_the_pass_tables_are_the_generated_one() -> None:
    assert markdown_table() in (ROOT / "README.md").read_text()
    assert markdown_table() in (ROOT / "docs" / "passes.md").read_text()
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "pass_table.py"), "--check"], check=False)
    assert check.returncode == 0, "a pass table is out of date: run scripts/pass_table.py"
