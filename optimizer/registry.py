"""The one registry of passes, by kebab-case name.

Built-in passes are listed here as `module:Class` strings and imported on first use, so that the core never
imports `passes/` eagerly. Third-party passes join with `register_pass(cls)` (also a decorator) or with a
packaging entry point in the group `optimizer.passes` whose value is the pass class.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points

from optimizer.errors import OptimizerError
from optimizer.ir import Graph
from optimizer.pass_base import Pass, PassContext

BUILTIN_PASSES: dict[str, str] = {
    "inline": "passes.inline:Inline",
    "freeze": "passes.freeze:Freeze",
    "strip": "passes.strip:StripTraining",
    "identity": "passes.identity:RemoveIdentities",
    "fold": "passes.fold:Fold",
    "fold-batch-norms": "passes.fold_batch_norms:FoldBatchNorms",
    "arith": "passes.arith:Arith",
    "cse": "passes.cse:CommonSubexpressions",
    "prune": "passes.prune:Prune",
    "branch-outputs": "passes.branch_outputs:BranchOutputs",
    "unfuse": "passes.unfuse:Unfuse",
    "default-attrs": "passes.default_attrs:DefaultAttrs",
}

DEFAULT_PIPELINE = "inline,freeze,strip,prune,identity,fold-batch-norms,cse,fold,arith,cse,prune"

ENTRY_POINT_GROUP = "optimizer.passes"

_registered: dict[str, type[Pass]] = {}
_entry_points_loaded = False


def register_pass(cls: type[Pass], *, replace: bool = False) -> type[Pass]:
    """Register `cls` under `cls.name`; refuse a taken name unless `replace`. Returns `cls` (a decorator)."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    taken = cls.name in _registered or cls.name in BUILTIN_PASSES
    if taken and not replace and _registered.get(cls.name) is not cls:
        raise ValueError(f"a pass named {cls.name!r} is already registered")
    _registered[cls.name] = cls
    return cls


def unregister_pass(name: str) -> None:
    """Forget a registered (not built-in) pass."""
    _registered.pop(name, None)


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name not in _registered and entry.name not in BUILTIN_PASSES:
            _registered[entry.name] = entry.load()


def pass_names() -> list[str]:
    """Every known pass name, built-ins first in pipeline order, then the registered ones sorted."""
    _load_entry_points()
    return list(BUILTIN_PASSES) + sorted(set(_registered) - set(BUILTIN_PASSES))


def get_pass(name: str) -> type[Pass]:
    """The pass class named `name`; an unknown name raises an OptimizerError listing the known ones."""
    if name in _registered:
        return _registered[name]
    if name in BUILTIN_PASSES:
        module_name, class_name = BUILTIN_PASSES[name].split(":")
        cls: type[Pass] = getattr(importlib.import_module(module_name), class_name)
        _registered[name] = cls
        return cls
    _load_entry_points()
    if name in _registered:
        return _registered[name]
    raise OptimizerError(f"unknown pass {name!r}; known passes: {', '.join(pass_names())}")


PassFunction = Callable[[Graph, PassContext], "bool | None"]


def function_pass(name: str, *, register: bool = True) -> Callable[[PassFunction], type[Pass]]:
    """Make `fn(graph, ctx)` a pass named `name` (registered unless `register=False`)."""

    def wrap(function: PassFunction) -> type[Pass]:
        def run(self: Pass, graph: Graph, ctx: PassContext) -> bool | None:
            return function(graph, ctx)

        namespace = {"name": name, "run": run, "__doc__": function.__doc__, "__module__": function.__module__}
        cls: type[Pass] = dataclass(frozen=True)(type(function.__name__, (Pass,), namespace))
        if register:
            register_pass(cls)
        return cls

    return wrap
