"""The call graph of a function library: who calls whom, which functions reach themselves, in what order to visit.

Contract
- An edge `f -> g` means a node of `f`'s body refers to `g`: as its op, or through any func-valued attr (`f`,
  `then_branch`, `body`, `branches`, lists of functions), as `library.called_functions` reads them. Gradient
  registrations are not calls. Names the library does not define are not in the graph.
- Every walk here is iterative and linear in the library's size (functions plus body nodes): a chain of calls a
  hundred thousand deep neither recurses nor slows down.
- `strongly_connected(library)` lists the call graph's strongly connected components, callees before callers;
  `recursive_functions` is every function on a cycle (a component of several functions, or one calling itself);
  `find_cycle` gives one cycle as `[f, g, ..., f]`, or None.
- `check_not_recursive(library)` raises an OptimizerError naming a cycle: TensorFlow instantiates a function's
  callees eagerly, so a recursive library crashes it (SIGSEGV) when any of it runs. The loader refuses such a
  model before any pass or verification sees it.
"""

from __future__ import annotations

from collections.abc import Iterable

from optimizer.errors import OptimizerError
from optimizer.library import called_functions
from optimizer.protos import FunctionDefLibrary

CallGraph = dict[str, list[str]]


def call_graph(library: FunctionDefLibrary) -> CallGraph:
    """Function name -> the library functions its body calls (each once, in order of first call)."""
    names = {function.signature.name for function in library.function}
    return {
        function.signature.name: list(
            dict.fromkeys(called for node in function.node_def for called in called_functions(node, names))
        )
        for function in library.function
    }


def strongly_connected(calls: CallGraph) -> list[list[str]]:
    """Tarjan's strongly connected components of `calls`, iteratively; callees' components come first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in calls:
        if root in index:
            continue
        work = [(root, 0)]  # (function, how many of its callees were looked at)
        while work:
            name, position = work.pop()
            if position == 0:
                index[name] = low[name] = len(index)
                stack.append(name)
                on_stack.add(name)
            callees = calls[name]
            if position < len(callees):
                work.append((name, position + 1))
                callee = callees[position]
                if callee not in index:
                    work.append((callee, 0))
                elif callee in on_stack:
                    low[name] = min(low[name], index[callee])
                continue
            if work:  # returning to the caller: it reaches what this function reaches
                caller = work[-1][0]
                low[caller] = min(low[caller], low[name])
            if low[name] == index[name]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == name:
                        break
                components.append(component)
    return components


def recursive_functions(calls: CallGraph) -> set[str]:
    """The functions on a cycle of `calls`."""
    return {
        name
        for component in strongly_connected(calls)
        for name in component
        if len(component) > 1 or name in calls[name]
    }


def _cycle_through(calls: CallGraph, start: str, members: set[str]) -> list[str]:
    """A shortest cycle from `start` back to it, inside `members` (breadth-first)."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for name in frontier:
            for callee in calls[name]:
                if callee == start:
                    path = [name]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if callee in members and callee not in parent:
                    parent[callee] = name
                    following.append(callee)
        frontier = following
    raise AssertionError(f"{start} is on no cycle")  # callers only pass members of a cycle


def find_cycle(calls: CallGraph) -> list[str] | None:
    """One cycle of `calls` as `[f, g, ..., f]` (starting at the smallest name of its component), or None."""
    for component in strongly_connected(calls):
        if len(component) > 1 or component[0] in calls[component[0]]:
            members = set(component)
            return _cycle_through(calls, min(members), members)
    return None


def check_not_recursive(library: FunctionDefLibrary) -> None:
    """Raise an OptimizerError naming a cycle when a function of `library` calls itself, directly or not."""
    cycle = find_cycle(call_graph(library))
    if cycle is not None:
        raise OptimizerError(
            f"the function library is recursive ({' -> '.join(cycle)}): TensorFlow cannot run recursive functions"
        )


def callers_first(calls: CallGraph, names: Iterable[str]) -> list[str]:
    """`names` and what they call, transitively, each function before every function it calls (those on a cycle
    in no particular order among themselves)."""
    wanted: set[str] = set()
    stack = [name for name in names if name in calls]
    while stack:
        name = stack.pop()
        if name not in wanted:
            wanted.add(name)
            stack.extend(calls[name])
    order = [name for component in strongly_connected(calls) for name in component if name in wanted]
    return order[::-1]
