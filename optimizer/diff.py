"""Graph diff: which nodes were removed, added or changed between two graphs, matched by name.

A node is *changed* when its op, attrs, device or inputs (data and control, in order; `x` and `x:0` are the same
input) differ. What changed is said in the notation of `optimizer.printer`, old -> new: `op AddV2 -> Sub`,
`inputs (x, w) -> (x, w:1, ^c)`, `attr T: f32 -> i32` (`unset` for an attr one side lacks),
`device "" -> "/device:CPU:0"`. Op counts are compared too. Node order does not matter.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from optimizer.printer import format_attr, format_inputs
from optimizer.protos import GraphDef, NodeDef


@dataclass
class GraphDiff:
    """What differs between graph `a` and graph `b`."""

    removed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    changed: dict[str, list[str]] = field(default_factory=dict)  # name -> what changed, old -> new
    op_counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # op -> (count in a, count in b)

    @property
    def same(self) -> bool:
        return not (self.removed or self.added or self.changed)


def _differences(a: NodeDef, b: NodeDef) -> list[str]:
    found = []
    if a.op != b.op:
        found.append(f"op {a.op} -> {b.op}")
    inputs_a, inputs_b = format_inputs(a.input), format_inputs(b.input)
    if inputs_a != inputs_b:
        found.append(f"inputs {inputs_a} -> {inputs_b}")
    if a.device != b.device:
        found.append(f"device {json.dumps(a.device)} -> {json.dumps(b.device)}")
    for key in sorted(set(a.attr) | set(b.attr)):
        if key not in a.attr or key not in b.attr or a.attr[key] != b.attr[key]:
            found.append(f"attr {key}: {_attr(a, key)} -> {_attr(b, key)}")
    return found


def _attr(node: NodeDef, key: str) -> str:
    return format_attr(node.attr[key]) if key in node.attr else "unset"


def diff_graph_defs(a: GraphDef, b: GraphDef) -> GraphDiff:
    """Compare two GraphDefs node by node (by name)."""
    nodes_a = {node.name: node for node in a.node}
    nodes_b = {node.name: node for node in b.node}
    result = GraphDiff(
        removed=[name for name in nodes_a if name not in nodes_b],
        added=[name for name in nodes_b if name not in nodes_a],
    )
    for name, node in nodes_a.items():
        if name in nodes_b:
            differences = _differences(node, nodes_b[name])
            if differences:
                result.changed[name] = differences
    counts: dict[str, list[int]] = {}
    for index, graph in enumerate((a, b)):
        for node in graph.node:
            counts.setdefault(node.op, [0, 0])[index] += 1
    result.op_counts = {op: (before, after) for op, (before, after) in sorted(counts.items())}
    return result
