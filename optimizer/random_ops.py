"""Random ops in verification: make the original and the optimized graph draw the same numbers.

TensorFlow's seeded random ops (`opinfo.takes_seed`: `RandomUniform`, `RandomUniformInt`, `RandomStandardNormal`,
`TruncatedNormal`, `ParameterizedTruncatedNormal`, `RandomGamma`, `RandomPoisson(V2)`, `RandomShuffle`,
`Multinomial`, `RandomCrop`, the candidate samplers, `FractionalMaxPool`, ...) draw fresh numbers in every session
when their `seed` and `seed2` attrs are both 0: two runs of one graph differ, and a comparison would fail falsely.

Contract
- `seed_alike(original, candidate, fetches)` returns copies of both GraphDefs in which every such op with
  seed = seed2 = 0, in the graph and in function bodies, has seed `SEED` and a nonzero seed2 derived from its
  *key* (and `deterministic` set, where the op has that attr: `FractionalMaxPool` takes a seed only then); the
  GraphDefs given are never modified (what is written keeps its attrs), and are returned as they are when there
  is nothing to seed. An original op's key is its node name (in a function body, its name there, which an inlined
  copy keeps as its suffix). A candidate op takes the key of an original op of the same type named as it is, or
  else whose name is the longest `/`-suffix of its name, a `_N` uniquifying suffix ignored: `inline` names body
  node `n` of call `c` `c/n` (or `c/n_1`); function names play no part, so a renamed or merged copy of a function
  matches too. Ops with one key draw the same numbers, in either graph; a fresh session draws the same sequence.
- Ops already seeded (seed or seed2 nonzero) draw the same numbers in every fresh session: kept as they are.
  Stateless random ops are deterministic: ignored. Ops whose state is a resource (`StatefulUniform*`,
  `StatefulStandardNormalV2`, `StatefulTruncatedNormal`, `RngSkip`, `RngReadAndSkip`: `tf.random.Generator`)
  are deterministic given that state, a variable: they are compared like any op reading a variable, both graphs
  starting from the same values.
- Not comparable (`Seeding.random_outputs`, with `Seeding.reason` naming the ops): the outputs that depend,
  through data or control inputs and function calls, on a candidate random op no original op matches, on a
  random op that cannot be seeded (`UNSEEDABLE_OPS`, or a seed given by a function attr), or on a random op,
  seeded or not, of a function called from several places (`shared_functions`: TensorFlow may run the calls on
  one kernel, which hands out its numbers in whatever order they run), or an inlined copy of one, in either graph.
- `unseedable_candidate(original, fetches)` is the plan for a candidate runtime that cannot be seeded (the TFLite
  interpreter) and that runs random ops: every output that a random op of the original reaches, seeded or not, is
  not comparable (a random op in a branch not taken counts too: erring on the side of not comparing). A candidate
  with no random op at all is compared on every output: an original output that was random then differs.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections import Counter
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass

from optimizer import opinfo
from optimizer.foldable import input_node
from optimizer.library import called_functions, function_closure
from optimizer.protos import GraphDef, NodeDef

SEED = 20261204
"""The `seed` attr every unseeded random op gets in the copies verification runs (`seed2` comes from its key)."""

UNSEEDABLE_OPS = frozenset({"NonDeterministicInts"})
"""Random ops with no seed attrs: their numbers differ on every run."""

UNSEEDED, SEEDED, UNSEEDABLE, SHARED = "unseeded", "seeded", "unseedable", "shared"

UNMATCHED = "unmatched"
REASONS = {
    UNMATCHED: "random ops of the optimized graph with no counterpart in the original",
    UNSEEDABLE: "random ops that cannot be seeded",
    SHARED: "random ops of functions called from several places, which TensorFlow may run on one kernel or several",
}
"""Why the outputs a random op reaches are not compared, by the op's state."""

_UNIQUIFIED = re.compile(r"_\d+$")

Where = tuple[str, str]
"""A node's place: (function name, node name); the function name is "" for a node of the graph itself."""


@dataclass(frozen=True)
class Seeding:
    """The GraphDefs to run (`candidate` None: it does not run in TensorFlow), how many random ops were seeded
    alike, and the outputs that cannot be compared, with the reason."""

    original: GraphDef
    candidate: GraphDef | None
    seeded: int = 0
    random_outputs: tuple[str, ...] = ()
    reason: str = ""


def is_random_op(op: str) -> bool:
    """True for a stateful random op, seedable or not (`random_state` is not None for its nodes)."""
    return op in UNSEEDABLE_OPS or opinfo.takes_seed(op)


def random_state(node: NodeDef) -> str | None:
    """`UNSEEDED`, `SEEDED` or `UNSEEDABLE` for a stateful random op (see the module docstring); None otherwise."""
    if not is_random_op(node.op):
        return None
    if node.op in UNSEEDABLE_OPS:
        return UNSEEDABLE
    seeds = []
    for name in ("seed", "seed2"):
        if name not in node.attr:  # the OpDef's default: 0
            seeds.append(0)
        elif node.attr[name].WhichOneof("value") == "placeholder":
            return UNSEEDABLE  # set by the calling function's attrs: not ours to fix here
        else:
            seeds.append(int(node.attr[name].i))
    return SEEDED if any(seeds) else UNSEEDED


def key_seed(key: str) -> int:
    """The nonzero `seed2` of the ops whose key is `key`: the same in every process."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:7], "big") | 1


def _scopes(graph_def: GraphDef) -> Iterator[tuple[str, Sequence[NodeDef]]]:
    yield "", graph_def.node
    for function in graph_def.library.function:
        yield function.signature.name, function.node_def


def _random_nodes(graph_def: GraphDef) -> list[tuple[str, int, NodeDef, str]]:
    """(scope, index, node, state) of every stateful random op of the graph and its function bodies; the state of
    one in a function that may share its kernels between call sites (`shared_functions`) is `SHARED`."""
    found = []
    for scope, nodes in _scopes(graph_def):
        if not any(is_random_op(op) for op in {node.op for node in nodes}):
            continue  # the common case, one cheap pass over the ops
        for index, node in enumerate(nodes):
            state = random_state(node)
            if state is not None:
                found.append((scope, index, node, state))
    shared = shared_functions(graph_def) if any(scope for scope, _, _, _ in found) else set()
    return [(scope, index, node, SHARED if scope in shared else state) for scope, index, node, state in found]


def shared_functions(graph_def: GraphDef) -> set[str]:
    """The library functions the graph reaches that are called from two or more nodes (of the graph or of the
    bodies of functions it reaches), and the functions they call. TensorFlow may run such calls on one
    instantiation of the function, whose random kernels then hand out their numbers in whatever order the calls
    run, or on one each: their draws are not reproducible. (A SavedModel's library holds many functions that no
    node of its graph reaches; their calls do not count.)"""
    library = graph_def.library
    names = {function.signature.name for function in library.function}
    sites: Counter[str] = Counter()
    for node in graph_def.node:
        sites.update(set(called_functions(node, names)))
    reached = function_closure(library, list(sites))
    for function in library.function:
        if function.signature.name in reached:
            for node in function.node_def:
                sites.update(set(called_functions(node, names)))
    return function_closure(library, [name for name, count in sites.items() if count > 1])


def _match(name: str, op: str, keys: Collection[tuple[str, str]]) -> str | None:
    """The key of `name` among the original's (key, op) pairs: itself, else its longest `/`-suffix, `_N` ignored."""
    parts = name.split("/")
    for start in range(len(parts)):
        suffix = "/".join(parts[start:])
        for key in (suffix, _UNIQUIFIED.sub("", suffix)):
            if (key, op) in keys:
                return key
    return None


def _seeded_copy(graph_def: GraphDef, seeds: Sequence[tuple[str, int, str]]) -> GraphDef:
    """A copy of `graph_def` with (scope, index, key) nodes given `SEED` and `key_seed(key)`; itself when none."""
    if not seeds:
        return graph_def
    copy = GraphDef()
    copy.CopyFrom(graph_def)
    scopes = dict(_scopes(copy))
    for scope, index, key in seeds:
        node = scopes[scope][index]
        node.attr["seed"].i = SEED
        node.attr["seed2"].i = key_seed(key)
        if _declares_deterministic(node.op):  # FractionalMaxPool refuses seeds unless `deterministic` is set
            node.attr["deterministic"].b = True
    return copy


@functools.cache
def _declares_deterministic(op: str) -> bool:
    definition = opinfo.op_def(op)
    return definition is not None and any(attr.name == "deterministic" for attr in definition.attr)


def dependent_outputs(graph_def: GraphDef, fetches: Sequence[str], marked: Collection[Where]) -> list[str]:
    """The fetches (`name:port`) whose value depends on a `marked` node, through data or control inputs and
    through calls of functions that hold one (directly or in functions they call): one walk forward from them."""
    if not marked:
        return []
    sources = {name for scope, name in marked if not scope}
    random_functions = {scope for scope, _ in marked if scope}
    if random_functions:
        library = graph_def.library
        names = {function.signature.name for function in library.function}
        callers = {name for name in names if not function_closure(library, [name]).isdisjoint(random_functions)}
        sources.update(node.name for node in graph_def.node if callers.intersection(called_functions(node, names)))
    consumers: dict[str, list[str]] = {}
    for node in graph_def.node:
        for text in node.input:
            consumers.setdefault(input_node(text), []).append(node.name)
    tainted: set[str] = set()
    stack = list(sources)
    while stack:
        name = stack.pop()
        if name not in tainted:
            tainted.add(name)
            stack.extend(consumers.get(name, ()))
    return [fetch for fetch in fetches if input_node(fetch) in tainted]


def _describe(marked: Collection[Where], why: str) -> str:
    named = sorted(f"{scope}/{name}" if scope else name for scope, name in marked)
    shown = ", ".join(named[:5]) + (f" and {len(named) - 5} more" if len(named) > 5 else "")
    return f"{shown} ({why})"


def seed_alike(original: GraphDef, candidate: GraphDef, fetches: Sequence[str]) -> Seeding:
    """Both graphs with their unseeded random ops seeded alike, and the outputs that cannot be compared."""
    original_seeds: list[tuple[str, int, str]] = []
    keys: set[tuple[str, str]] = set()
    shared_keys: set[tuple[str, str]] = set()
    original_marked: dict[str, set[Where]] = {UNSEEDABLE: set(), SHARED: set()}
    for scope, index, node, state in _random_nodes(original):
        if state == UNSEEDED:
            original_seeds.append((scope, index, node.name))
            keys.add((node.name, node.op))
        elif state in original_marked:
            original_marked[state].add((scope, node.name))
            if state == SHARED:
                shared_keys.add((node.name, node.op))
    keys -= shared_keys  # a key also used by a shared function's op would match an inlined copy of it
    candidate_seeds: list[tuple[str, int, str]] = []
    candidate_marked: dict[str, set[Where]] = {UNSEEDABLE: set(), SHARED: set(), UNMATCHED: set()}
    for scope, index, node, state in _random_nodes(candidate):
        if state == UNSEEDED:
            key = _match(node.name, node.op, keys)
            if key is None:
                shared = _match(node.name, node.op, shared_keys) is not None
                candidate_marked[SHARED if shared else UNMATCHED].add((scope, node.name))
            else:
                candidate_seeds.append((scope, index, key))
        elif state in candidate_marked:
            candidate_marked[state].add((scope, node.name))
    random = set(dependent_outputs(original, fetches, set().union(*original_marked.values())))
    random.update(dependent_outputs(candidate, fetches, set().union(*candidate_marked.values())))
    reasons = [
        _describe(original_marked.get(state, set()) | candidate_marked.get(state, set()), why)
        for state, why in REASONS.items()
        if original_marked.get(state) or candidate_marked.get(state)
    ]
    return Seeding(
        _seeded_copy(original, original_seeds),
        _seeded_copy(candidate, candidate_seeds),
        len(original_seeds),
        tuple(fetch for fetch in fetches if fetch in random),
        "; ".join(reasons) if random else "",
    )


def unseedable_candidate(original: GraphDef, fetches: Sequence[str]) -> Seeding:
    """The plan when the candidate runs where nothing can be seeded and holds random ops: the outputs that a random
    op of the original reaches, seeded or not, are not comparable."""
    marked = {(scope, node.name) for scope, _, node, _ in _random_nodes(original)}
    random = dependent_outputs(original, fetches, marked)
    why = "random ops, and the optimized model's runtime cannot be seeded like TensorFlow"
    return Seeding(original, None, 0, tuple(random), _describe(marked, why) if random else "")
