"""Pass documentation from one source, the pass modules' docstrings: `--list-passes`, `--explain` and the
pass table of README.md and docs/passes.md (`scripts/pass_table.py` writes it; a test keeps them equal to it).

A pass module's docstring starts with "`name`: summary." and goes on with its contract.
"""

from __future__ import annotations

import dataclasses
import importlib

from optimizer.registry import DEFAULT_PIPELINE, get_pass, pass_names


def contract(name: str) -> str:
    """The whole contract of pass `name`: its module's docstring (or its class's, for a plugin without one)."""
    cls = get_pass(name)
    text = importlib.import_module(cls.__module__).__doc__ or ""
    if not text.strip().startswith(f"`{name}`"):
        text = cls.__doc__ or ""
    return text.strip()


def summary(name: str) -> str:
    """The first paragraph of the contract, without its "`name`: " prefix, on one line."""
    first = " ".join(contract(name).split("\n\n")[0].split())
    prefix = f"`{name}`: "
    return first[len(prefix) :] if first.startswith(prefix) else first


def options(name: str) -> str:
    """`option-name=default, ...`, or `-` for a pass without options."""
    fields = dataclasses.fields(get_pass(name))
    return ", ".join(f"{field.name.replace('_', '-')}={field.default}" for field in fields) or "-"


def markdown_table() -> str:
    """The pass table (README.md, docs/passes.md): every registered pass in registry order, and the default pipeline."""
    lines = ["| pass | what it does | options (defaults) |", "|---|---|---|"]
    lines += [f"| `{name}` | {summary(name)} | {options(name)} |" for name in pass_names()]
    lines += ["", f"Default pipeline (to a fixed point): `{DEFAULT_PIPELINE}`."]
    return "\n".join(lines)
