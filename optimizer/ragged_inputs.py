"""Graph inputs that are the row splits of a ragged tensor, and valid values for them.

A ragged tensor crosses a graph's boundary as dense tensors: its flat values and one row-splits vector per ragged
dimension (a TF2 SavedModel signature taking a `tf.RaggedTensorSpec` `x` has the inputs `x`, the values, and
`x_1`, the splits). Random integers are not row splits: TensorFlow requires them to start at 0, never decrease and
end at the length of what they split, and rejects the graph's run otherwise.

Contract
- `row_splits_inputs` finds which inputs are row splits from the ops that consume them, by the ops' OpDef argument
  names, never by the inputs' names: an argument named `*splits` (`rt_nested_splits`, `params_nested_splits`,
  `splits`; outermost first) splits the next one, and the last splits the op's only `*values` argument; of
  `RaggedTensorToTensor`'s `row_partition_tensors`, those its `row_partition_types` call `ROW_SPLITS`. Inputs are
  followed through `Identity` and into the bodies of the functions that calls (`PartitionedCall`, a library
  function used as an op) pass them to. The answer maps each splits input to the input it splits; a pair whose
  target is not a graph input (computed inside the graph) is left out.
- `make_row_splits` replaces the random values of those inputs with valid splits: `ROWS` rows where the length is
  dynamic (the static length where it is known), cut at seeded random points of what they split, innermost first.
  Inputs the caller fixed (`given`) are kept as they are.
- A graph without any op that takes row splits costs one pass over its op names (each distinct op's OpDef read
  once).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from optimizer import opinfo
from optimizer.protos import AttrValue, GraphDef, NodeDef

ROWS = 2
"""Rows given to a ragged input whose number of rows is dynamic."""
_CALLS = ("PartitionedCall", "StatefulPartitionedCall")
_PARTITIONS = "row_partition_tensors"
_Scope = str  # "" for the graph, else a library function's name


def row_splits_inputs(graph_def: GraphDef, inputs: Sequence[str]) -> dict[str, str]:
    """{splits input: the input it splits (the values, or the next splits)}, tensor names `node:port`."""
    functions = {function.signature.name: function for function in graph_def.library.function}
    ops = {node.op for node in graph_def.node}
    ops.update(node.op for function in functions.values() for node in function.node_def)
    takers = {op for op in ops if _takes_splits(op)}
    if not takers:
        return {}
    carried: dict[tuple[_Scope, str], str] = {}
    pending = [("", _graph_ref(name), name) for name in inputs]
    uses: dict[_Scope, dict[str, list[tuple[NodeDef, int]]]] = {}
    while pending:
        scope, ref, origin = pending.pop()
        if (scope, ref) in carried:
            continue
        carried[scope, ref] = origin
        if scope not in uses:
            nodes = graph_def.node if scope == "" else functions[scope].node_def
            uses[scope] = _uses(nodes, scope == "")
        for node, index in uses[scope].get(ref, []):
            if node.op == "Identity":
                pending.append((scope, f"{node.name}:0" if scope == "" else f"{node.name}:output:0", origin))
            callee = _attr(node, "f").func.name if node.op in _CALLS else node.op
            if callee in functions and index < len(functions[callee].signature.input_arg):
                pending.append((callee, functions[callee].signature.input_arg[index].name, origin))
    found: dict[str, str] = {}
    for scope in uses:
        nodes = graph_def.node if scope == "" else functions[scope].node_def
        for node in nodes:
            chain = _splits_and_values(node) if node.op in takers else None
            if not chain:
                continue
            refs = [_ref(node.input[index], scope == "") for index in chain]
            for splits, target in itertools.pairwise(refs):
                if (scope, splits) in carried and (scope, target) in carried:
                    found[carried[scope, splits]] = carried[scope, target]
    return found


def make_row_splits(
    feeds: Mapping[str, np.ndarray],
    splits_of: Mapping[str, str],
    static_lengths: Mapping[str, int | None],
    seed: int,
    given: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """`feeds` with each splits input of `splits_of` (not in `given`) made valid for what it splits; its length
    is `static_lengths[name]` when known, else `ROWS` + 1."""
    result = dict(feeds)
    rng = np.random.default_rng(seed)
    for name in _innermost_first(splits_of):
        target = splits_of[name]
        if name in given or name not in result or target not in result or np.ndim(result[target]) == 0:
            continue  # fixed by the caller, or splitting nothing this can measure
        end = len(result[target]) - 1 if target in splits_of else int(np.shape(result[target])[0])
        length = static_lengths.get(name) or ROWS + 1
        cuts = np.sort(rng.integers(0, end + 1, size=max(length - 2, 0)))
        splits = np.concatenate([[0], cuts, [end]]) if length > 1 else np.zeros(1)
        result[name] = splits.astype(np.asarray(result[name]).dtype)
    return result


def _innermost_first(splits_of: Mapping[str, str]) -> list[str]:
    """Splits inputs ordered so that a splits is made after the splits it splits (its length is then known)."""
    ordered: list[str] = []

    def visit(name: str, depth: int) -> None:
        if name in ordered or depth > len(splits_of):
            return
        if splits_of[name] in splits_of:
            visit(splits_of[name], depth + 1)
        ordered.append(name)

    for name in splits_of:
        visit(name, 0)
    return ordered


def _takes_splits(op: str) -> bool:
    """Whether `op`'s OpDef has a row-splits argument."""
    op_def = opinfo.op_def(op)
    return op_def is not None and any(
        arg.name == _PARTITIONS or arg.name.endswith("splits") for arg in op_def.input_arg
    )


def _splits_and_values(node: NodeDef) -> list[int]:
    """The input indices of `node`'s row splits, outermost first, then of the values the last one splits; empty
    when its op takes no row splits (or not in a way this reads)."""
    op_def = opinfo.op_def(node.op)
    if op_def is None:
        return []
    splits: list[int] = []
    values: list[int] = []
    index = 0
    for arg in op_def.input_arg:
        count = _arg_length(node, arg)
        span = list(range(index, index + count))
        index += count
        if arg.name == _PARTITIONS:
            kinds = [kind.decode() for kind in _attr(node, "row_partition_types").list.s]
            splits += [position for position, kind in zip(span, kinds, strict=False) if kind == "ROW_SPLITS"]
        elif arg.name.endswith("splits"):
            splits += span
        elif arg.name.endswith("values"):
            values.append(span[0] if len(span) == 1 and not (arg.number_attr or arg.type_list_attr) else -1)
    if not splits or len(values) != 1 or values[0] < 0 or index > len(node.input):
        return []
    return [*splits, values[0]]


def _arg_length(node: NodeDef, arg: Any) -> int:
    """How many of `node`'s inputs the OpDef argument `arg` takes (a list argument's length is an attr)."""
    if arg.number_attr:
        return int(_attr(node, arg.number_attr).i)
    if arg.type_list_attr:
        return len(_attr(node, arg.type_list_attr).list.type)
    return 1


def _attr(node: NodeDef, name: str) -> AttrValue:
    """`node`'s attr `name`, or an empty one; never added to the node (`node.attr[name]` would add it)."""
    return node.attr[name] if name in node.attr else AttrValue()


def _uses(nodes: Sequence[NodeDef] | Iterator[NodeDef], in_graph: bool) -> dict[str, list[tuple[NodeDef, int]]]:
    """{tensor reference: [(consumer, input index)]} over `nodes` (control inputs left out)."""
    table: dict[str, list[tuple[NodeDef, int]]] = {}
    for node in nodes:
        for index, text in enumerate(node.input):
            if not text.startswith("^"):
                table.setdefault(_ref(text, in_graph), []).append((node, index))
    return table


def _ref(text: str, in_graph: bool) -> str:
    """A node input as one canonical string: `node:port` in the graph; as written in a function body."""
    return _graph_ref(text) if in_graph else text


def _graph_ref(name: str) -> str:
    return name if ":" in name else f"{name}:0"
