"""The `Pass` base class and the context passes share (`function_pass`, which also registers, is in `registry`).

A pass is a frozen dataclass: `name` (kebab-case) is a class variable, its typed fields are its options
(written `name{option-name=value}` in a pipeline), and its docstring is its contract. `run(graph, ctx)` mutates
`graph` through the IR primitives and may return whether it changed anything; the manager checks that claim
against the graph's mutation counter.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from optimizer.ir import Graph


@dataclass
class PassContext:
    """What the manager hands every pass: a logger and an optional budget of rewrites.

    `max_rewrites` lets a caller stop a pass after K rewrites (bisection finds the first bad one);
    a pass asks `ctx.allow_rewrite()` before each rewrite and stops rewriting when it returns False.
    `state` holds what a pass keeps for its later runs in the same pipeline run, under a key of its own (`fold`
    keeps its growth guard there, so that the whole run, not each fold, is held to one limit).
    """

    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("optimizer.passes"))
    max_rewrites: int | None = None
    rewrites: int = 0
    state: dict[str, Any] = field(default_factory=dict)

    def allow_rewrite(self) -> bool:
        """Count one rewrite; False once the budget is spent (the rewrite must then not happen)."""
        if self.max_rewrites is not None and self.rewrites >= self.max_rewrites:
            return False
        self.rewrites += 1
        return True


@dataclass(frozen=True)
class Pass:
    """Base of every pass. Subclasses set `name`, declare options as dataclass fields, and define `run`."""

    name: ClassVar[str] = ""
    idempotent: ClassVar[bool] = False
    """True when one run reaches the pass's own fixed point (a second run right after changes nothing): the
    manager then treats the graph it leaves as one the pass has seen."""

    def run(self, graph: Graph, ctx: PassContext) -> bool | None:
        """Rewrite `graph` in place; return whether it changed (or None to let the manager count)."""
        raise NotImplementedError

    @classmethod
    def option_fields(cls) -> list[dataclasses.Field[Any]]:
        """The pass's options, in declaration order."""
        return list(dataclasses.fields(cls))

    def __str__(self) -> str:
        """The canonical pipeline element: `name` or `name{option=value,...}` with non-default options."""
        parts = []
        for option in self.option_fields():
            value = getattr(self, option.name)
            if option.default is not dataclasses.MISSING and value == option.default:
                continue
            text = str(value).lower() if isinstance(value, bool) else str(value)
            parts.append(f"{option.name.replace('_', '-')}={text}")
        return f"{self.name}{{{','.join(parts)}}}" if parts else self.name
