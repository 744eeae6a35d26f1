"""Which nodes of a graph write state: the ops that make a second run of the same graph differ from the first.

Contract
- `state_writers(graph_def, fetches)` lists, as `node: op` (`function/node: op` inside library functions), every
  node that running `fetches` executes and that changes state outliving a run: variable updates (`Assign*`,
  `*Apply*`, `Scatter*`, `AssignVariableOp`, any op taking a ref input other than ref plumbing), and stateful
  ops taking a resource (queues, iterators, tables, counters), except the reads in `READ_ONLY_OPS` and nodes
  calling library functions (`If`, `While`, `StatefulPartitionedCall`, ...: the bodies they call are scanned
  instead).
- The rule errs on the side of "writes": an unknown stateful resource op counts, so that verification runs such a
  graph twice (a lost update then shows) rather than trusting one run.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from optimizer import opinfo
from optimizer.library import called_functions, executed_nodes
from optimizer.protos import GraphDef, NodeDef
from optimizer.variables import RESOURCE

REF_PLUMBING = frozenset(
    {"RefIdentity", "RefSwitch", "RefEnter", "RefExit", "RefMerge", "RefNextIteration", "RefSelect"}
)
"""Ops that take a ref and only forward it (TF1 control flow over variables)."""

READ_ONLY_OPS = frozenset(
    {
        "ReadVariableOp",
        "_ReadVariablesOp",
        "ResourceGather",
        "ResourceGatherNd",
        "VariableShape",
        "VarIsInitializedOp",
        "IsVariableInitialized",
        "LookupTableFindV2",
        "LookupTableFind",
        "LookupTableSizeV2",
        "LookupTableSize",
        "LookupTableExportV2",
        "LookupTableExport",
        "QueueSizeV2",
        "QueueIsClosedV2",
    }
)
"""Ops that take a variable, table or queue and read it without changing it."""


def _takes_state(node: NodeDef) -> bool:
    """True when `node` has a ref input, or is a stateful op with a resource input."""
    definition = opinfo.op_def(node.op)
    if definition is None:
        return False
    if any(arg.is_ref for arg in definition.input_arg):
        return True
    if not definition.is_stateful:
        return False
    for arg in definition.input_arg:
        if arg.type == RESOURCE:
            return True
        if arg.type_attr and node.attr[arg.type_attr].type == RESOURCE:
            return True
        if arg.type_list_attr and RESOURCE in node.attr[arg.type_list_attr].list.type:
            return True
    return False


def _writers(nodes: Iterable[NodeDef], prefix: str, functions: Collection[str]) -> list[str]:
    found = []
    for node in nodes:
        if node.op in READ_ONLY_OPS or node.op in REF_PLUMBING or called_functions(node, functions):
            continue
        if _takes_state(node):
            found.append(f"{prefix}{node.name}: {node.op}")
    return found


def state_writers(graph_def: GraphDef, fetches: Iterable[str]) -> list[str]:
    """The nodes that running `fetches` of `graph_def` executes (`optimizer.library.executed_nodes`, function
    bodies included) and that write state; see the module docstring."""
    nodes, called = executed_nodes(graph_def, fetches)
    functions = {function.signature.name for function in called.function}
    found = _writers(nodes, "", functions)
    for function in called.function:
        found.extend(_writers(function.node_def, f"{function.signature.name}/", functions))
    return found
