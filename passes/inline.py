"""`inline`: replace calls of library functions by the functions' bodies.

Contract
- Every `PartitionedCall`/`StatefulPartitionedCall` of a library function, and every node whose op is a library
  function, is replaced by a copy of the function's body: in the top-level graph, then in the bodies of the
  functions that remain (the branches of `If`, the body of `While`), calls inside inlined bodies included. This is
  what makes variables read inside functions visible to `freeze` (TF2 SavedModels read every weight inside
  `StatefulPartitionedCall`s).
- Body nodes are named `<call>/<node>` (made unique), keep their attrs, and take the call's device when they have
  none; colocation references follow the renaming. The body's arguments read the call's inputs, and every use of
  the call's output `k` reads the tensor the body returns as output `k`.
- Control edges keep their meaning:
  - when the call has control inputs, a `NoOp` `<call>/input_control_node` takes them, and every body node that
    reads no other body node (constants, nodes that read only arguments) waits for it;
  - when something has a control edge from the call, a `NoOp` with the call's name waits for the body's control
    outputs (its side effects, as TensorFlow's own inliner has it), or for its results when it has none, so
    `^call` still means "after the call";
  - a call that holds a graph input or output keeps its name and ports: it becomes an `Identity` (one result),
    `IdentityN` (several) or `NoOp` (none) of the returned tensors, waiting for the control outputs.
- Functional control flow (`If`, `While`, `Case`, stateless or not) is kept as it is, never lowered to
  `Switch`/`Merge`: TFLite and every TensorFlow runtime run it.
- Functions that inlining leaves unreferenced leave the library; every other function stays byte for byte.
- Not inlined, with a log line: polymorphic functions, bodies using ops TensorFlow does not know, recursive
  functions (on a cycle of the call graph, `optimizer.call_graph`; `optimizer.load` refuses such a library, a
  Graph built in Python may still hold one), calls nested deeper than `max-depth`, and calls of a function whose
  whole expansion (its body with everything it calls inlined, counted callees first
  in linear time without building it) has more than `max-nodes` nodes: a tree where each function calls the next
  twice doubles with every level. Such a function stays, its calls of small functions inlined; since inlining
  never changes an expansion's size, a second run changes nothing. Past `max-total` nodes added by one run, the
  remaining calls stay too.
- Cost: linear in the nodes it adds plus the library's size. Bodies are lifted once; the functions that remain
  referenced are expanded callers first, so a function whose every call was inlined is never expanded itself.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from optimizer import Graph, Pass, PassContext
from optimizer.call_graph import call_graph, callers_first, recursive_functions, strongly_connected
from optimizer.inlining import callee, inline_call
from optimizer.library import (
    FunctionBody,
    NotLiftable,
    Signatures,
    called_functions,
    drop_unreferenced,
    lift,
    lower,
    signatures_of,
)
from optimizer.protos import FunctionDefLibrary


def expansion_sizes(library: FunctionDefLibrary, recursive: set[str], cap: int) -> dict[str, int]:
    """Function name -> the nodes its body would have with every call inlined, transitively (capped at `cap`;
    `cap` for a recursive function): callees first, one pass over the library."""
    signatures = {function.signature.name: function.signature for function in library.function}
    by_name = {function.signature.name: function for function in library.function}
    sizes: dict[str, int] = {}
    for component in strongly_connected(call_graph(library)):
        for name in component:
            if name in recursive:
                sizes[name] = cap
                continue
            total = 0
            for node in by_name[name].node_def:
                called = callee(node, signatures)
                total += 1 if called is None or called in recursive else sizes.get(called, 1)
            sizes[name] = min(total, cap)
    return sizes


@dataclass(frozen=True)
class Inline(Pass):
    """Inline calls of library functions (PartitionedCall, StatefulPartitionedCall) into the graph."""

    name = "inline"
    max_depth: int = 64
    max_nodes: int = 50_000
    max_total: int = 500_000

    def run(self, graph: Graph, ctx: PassContext) -> None:
        signatures = signatures_of(graph)
        if not signatures:
            return
        calls = call_graph(graph.library)
        run = _Run(self, graph, signatures, recursive_functions(calls), ctx)
        run.inline_all(graph)
        names = set(calls)
        live = {name for node in graph.nodes() for name in called_functions(node.proto, names)}
        # Callers before callees: when a function comes up, every body that could still call it is final, so a
        # function that inlining left unreferenced is never expanded (a chain inlined into the graph costs its
        # length, not its square).
        for name in callers_first(calls, live):
            function = graph.function(name)
            if name not in live or function is None:
                continue
            if name in run.recursive:
                ctx.logger.info("inline: leave calls in %s: it is recursive", name)
            elif any(
                run.inlinable(called) and run.expansion.get(called, 0) <= self.max_nodes  # type: ignore[arg-type]
                for called in (callee(node, signatures) for node in function.node_def)
            ):
                try:
                    body = lift(function, signatures)
                except NotLiftable as error:
                    ctx.logger.info("inline: leave calls in %s: %s", name, error)
                else:
                    before = body.graph.mutations
                    run.inline_all(body.graph)
                    if body.graph.mutations != before:
                        graph.set_function(lower(body, signatures))
                        function = graph.function(name) or function
            live.update(called for node in function.node_def for called in called_functions(node, names))
        if run.over_budget:
            ctx.logger.info(
                "inline: left %d calls: inlining them would add more than %d nodes in all", run.over_budget, run.budget
            )
        drop_unreferenced(graph, run.inlined)


class _Run:
    """One run of the pass: the bodies lifted so far, the node budget left, what was inlined."""

    def __init__(
        self, options: Inline, library: Graph, signatures: Signatures, recursive: set[str], ctx: PassContext
    ) -> None:
        self.options, self.library, self.signatures, self.recursive, self.ctx = (
            options,
            library,
            signatures,
            recursive,
            ctx,
        )
        self.bodies: dict[str, FunctionBody | None] = {}
        self.budget = options.max_total
        self.expansion = expansion_sizes(library.library, recursive, options.max_nodes + 1)
        self.added = 0
        self.over_budget = 0
        self.inlined: set[str] = set()

    def inlinable(self, name: str | None) -> bool:
        """Whether calls of `name` may be inlined at all: a library function that is not recursive."""
        return name is not None and name not in self.recursive and self.library.function(name) is not None

    def too_big(self, call: str, name: str) -> bool:
        """Whether the whole expansion of a call of `name` is over `max-nodes` (then the call stays, logged)."""
        if self.expansion.get(name, 0) <= self.options.max_nodes:
            return False
        self.ctx.logger.info(
            "inline: leave %s: %s with everything it calls has more than %d nodes", call, name, self.options.max_nodes
        )
        return True

    def _body(self, call: str, name: str) -> FunctionBody | None:
        if name not in self.bodies:
            function = self.library.function(name)
            try:
                self.bodies[name] = None if function is None else lift(function, self.signatures)
            except NotLiftable as error:
                self.ctx.logger.info("inline: leave %s: %s", call, error)
                self.bodies[name] = None
        return self.bodies[name]

    def inline_all(self, target: Graph) -> None:
        """Inline every call in `target`, breadth-first, calls the bodies bring included (see the contract)."""
        pending = deque((node.name, 0) for node in target.nodes() if callee(node.proto, self.signatures))
        while pending:
            call, depth = pending.popleft()
            name = callee(target.node(call).proto, self.signatures)
            if not self.inlinable(name):
                if name in self.recursive:
                    self.ctx.logger.info("inline: leave %s: %s is recursive", call, name)
                continue
            assert name is not None
            if depth >= self.options.max_depth:
                self.ctx.logger.info("inline: leave %s: calls nest deeper than %d", call, self.options.max_depth)
                continue
            if self.too_big(call, name):
                continue
            body = self._body(call, name)
            if body is None:
                continue
            size = len(body.graph) - len(body.args)
            if self.added + size > self.budget:
                self.over_budget += 1
                continue
            if not self.ctx.allow_rewrite():
                continue
            self.added += size
            self.inlined.add(name)
            brought = inline_call(target, call, body, self.signatures)
            pending.extend((inner, depth + 1) for inner in brought)
