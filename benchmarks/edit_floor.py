"""The edit floor: what the graph edits a pipeline run makes cost on their own, with no analysis at all.

`record_edits(graph, pipeline)` runs `pipeline` over `graph` and records each outermost call of a mutating `Graph`
method (`EDITS`) with its arguments; `replay(graph, edits)` makes the same calls, in order, on another copy of the
same input. The replay must end in the very graph the run made: `edit_floor` checks this byte for byte, so an edit
made some other way (a missing method in `EDITS`) shows as a mismatch, never as a floor too low.

Load + replay + save is a lower bound on the pipeline's time in this IR: every analysis (hashing, pattern matching,
reachability, checks) is left out, only the edits to the networkx adjacency and the NodeDefs stay. Set against
Grappler's time in the same run, it shows how far any rewrite of the passes' analysis could go.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from benchmarks.common import load_step_save
from optimizer.ir import Graph
from optimizer.pass_base import Pass
from optimizer.protos import NodeDef

EDITS = (
    "add_node",
    "add_node_def",
    "remove",
    "remove_nodes",
    "set_input",
    "set_inputs",
    "replace_all_uses",
    "move_readers",
    "add_control_input",
    "remove_control_input",
    "set_op",
    "set_attr",
    "del_attr",
    "set_function",
    "remove_function",
)

Edit = tuple[str, tuple[Any, ...], dict[str, Any]]


def _materialized(argument: Any) -> Any:
    """An iterator argument as a list, so that both the call and the record see its items."""
    return list(argument) if hasattr(argument, "__next__") else argument


def _snapshot(argument: Any) -> Any:
    """An argument as it was at the call: a set as a list, a NodeDef (which the graph takes and edits) copied."""
    if isinstance(argument, NodeDef):
        return NodeDef.FromString(argument.SerializeToString())
    if isinstance(argument, (set, frozenset, list)):
        return list(argument)
    return argument


@contextmanager
def _recording(edits: list[Edit]) -> Iterator[None]:
    """While open, each outermost call of an `EDITS` method of any Graph is appended to `edits`."""
    depth = [0]
    originals = {name: getattr(Graph, name) for name in EDITS}

    def recorder(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(graph: Graph, *args: Any, **kwargs: Any) -> Any:
            if depth[0] == 0:
                args = tuple(_materialized(argument) for argument in args)
                kwargs = {key: _materialized(value) for key, value in kwargs.items()}
                recorded = {key: _snapshot(value) for key, value in kwargs.items()}
                edits.append((name, tuple(_snapshot(argument) for argument in args), recorded))
            depth[0] += 1
            try:
                return method(graph, *args, **kwargs)
            finally:
                depth[0] -= 1

        return call

    for name, method in originals.items():
        setattr(Graph, name, recorder(name, method))
    try:
        yield
    finally:
        for name, method in originals.items():
            setattr(Graph, name, method)


def record_edits(graph: Graph, passes: str | Sequence[Pass] | None = None) -> list[Edit]:
    """Run `passes` (as `optimizer.optimize` takes them; None: the default pipeline) over `graph` in place; return
    the edits they made, in order."""
    import optimizer

    edits: list[Edit] = []
    with _recording(edits):
        optimizer.optimize(graph, passes)
    return edits


def replay(graph: Graph, edits: list[Edit]) -> None:
    """Make `edits` on `graph` (a fresh copy of the input they were recorded on), in order."""
    for name, args, kwargs in edits:
        getattr(graph, name)(*args, **kwargs)


def edit_floor(
    path: str, inputs: list[str], outputs: list[str], out: str, passes: str | Sequence[Pass] | None = None
) -> dict[str, Any]:
    """Record the edits of `passes` (None: the default pipeline) on the model at `path`, then time load + replay +
    save (to `out`) on a fresh load: `seconds`, `load_seconds`, `edits_seconds`, `save_seconds`, `edits` (how many
    calls), `nodes` after, and `matches` (whether the replay gave the run's very output)."""
    import optimizer

    graph = optimizer.load(path, inputs, outputs)
    edits = record_edits(graph, passes)
    expected = graph.to_bytes()
    del graph
    fresh, figures = load_step_save(path, inputs, outputs, out, lambda graph: replay(graph, edits), "edits")
    return {**figures, "edits": len(edits), "matches": fresh.to_bytes() == expected}
