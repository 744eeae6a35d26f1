"""What TensorFlow's op registry says about an op: its outputs, statefulness, ref outputs, seed attrs.

Ops that a graph calls by function name (`PartitionedCall` targets are attrs, but a node may also use a
library function's name as its op) are answered from the function library's signatures.
"""

from __future__ import annotations

import functools

from optimizer._tf import tensorflow
from optimizer.protos import FunctionDefLibrary, NodeDef, OpDef


@functools.cache
def op_def(op: str) -> OpDef | None:
    """The registered OpDef of `op`, or None when TensorFlow does not know it."""
    tensorflow()
    from tensorflow.python.framework import op_def_registry

    return op_def_registry.get(op)


def _arg_count(node: NodeDef, arg: OpDef.ArgDef) -> int:
    if arg.number_attr:
        return int(node.attr[arg.number_attr].i)
    if arg.type_list_attr:
        return len(node.attr[arg.type_list_attr].list.type)
    return 1


@functools.cache
def fixed_output_count(op: str) -> int | None:
    """The output count of `op` when its OpDef fixes it (no list outputs); None otherwise."""
    definition = op_def(op)
    if definition is None or any(arg.number_attr or arg.type_list_attr for arg in definition.output_arg):
        return None
    return len(definition.output_arg)


def num_outputs(node: NodeDef, library: FunctionDefLibrary | None = None) -> int | None:
    """How many output tensors `node` has, or None when its op is unknown."""
    fixed = fixed_output_count(node.op)
    if fixed is not None:
        return fixed
    definition = op_def(node.op)
    if definition is not None:
        return sum(_arg_count(node, arg) for arg in definition.output_arg)
    if library is not None:
        for function in library.function:
            if function.signature.name == node.op:
                return len(function.signature.output_arg)
    return None


def num_inputs(node: NodeDef) -> int | None:
    """How many data inputs `node`'s OpDef asks for (its list lengths read from its attrs), or None when its op is
    unknown or an attr that sets a list length is missing."""
    definition = op_def(node.op)
    if definition is None:
        return None
    total = 0
    for arg in definition.input_arg:
        length = arg.number_attr or arg.type_list_attr
        if length and length not in node.attr:
            return None
        total += _arg_count(node, arg)
    return total


def is_stateful(op: str) -> bool:
    """True when TensorFlow marks `op` stateful, or does not know it (unknown ops are treated as stateful)."""
    definition = op_def(op)
    return definition is None or definition.is_stateful


@functools.cache
def takes_seed(op: str) -> bool:
    """True when `op`'s OpDef declares the int attrs `seed` and `seed2`: TensorFlow's seeded random ops (and a few
    that declare them without drawing anything, such as `ComputeAccidentalHits`)."""
    definition = op_def(op)
    if definition is None:
        return False
    declared = {attr.name: attr.type for attr in definition.attr}
    return declared.get("seed") == "int" and declared.get("seed2") == "int"


@functools.cache
def has_ref_output(op: str) -> bool:
    """True when some output of `op` is a ref tensor (TF1 variables and their plumbing)."""
    definition = op_def(op)
    return definition is not None and any(arg.is_ref for arg in definition.output_arg)


LOOP_BACK_OPS = frozenset({"NextIteration", "RefNextIteration"})
"""The back edges of TF1 while loops: the one place a graph may have a cycle."""

SWITCH_OPS = frozenset({"Switch", "RefSwitch", "_SwitchN"})
"""Ops whose outputs are dead on the branch not taken (TF1 control flow)."""

CONTROL_FLOW_OPS = frozenset(
    {
        "Switch",
        "RefSwitch",
        "_SwitchN",
        "Merge",
        "RefMerge",
        "Enter",
        "RefEnter",
        "Exit",
        "RefExit",
        "NextIteration",
        "RefNextIteration",
        "LoopCond",
        "ControlTrigger",
    }
)
"""TF1 control-flow primitives: they route values and dead-ness through conds and loops, they compute nothing."""

CONTROL_FLOW_ENTRY_OPS = SWITCH_OPS | frozenset({"Merge", "RefMerge", "Enter", "RefEnter"})
"""The TF1 control-flow primitives that open a conditional region or a loop frame (a subset of
`CONTROL_FLOW_OPS`): whatever they reach runs conditionally or inside a loop."""

PLACEHOLDER_OPS = frozenset({"Placeholder", "PlaceholderV2", "PlaceholderWithDefault"})
"""Placeholders: the ops a graph is fed through (those that take `--input-shape`)."""

ARGUMENT_OPS = PLACEHOLDER_OPS | frozenset({"_Arg"})
"""Ops whose value comes from outside the graph or function body: placeholders and function arguments (`_Arg`)."""

IF_OPS = frozenset({"If", "StatelessIf"})
"""Functional conditionals with a `then_branch` and an `else_branch`."""

CASE_OPS = frozenset({"Case", "StatelessCase"})
"""Functional conditionals with a list of `branches`."""

CONDITIONAL_OPS = IF_OPS | CASE_OPS
"""Functional conditionals (TF2): they call one of their branch functions."""

ASSIGN_OPS = frozenset({"Assign", "AssignVariableOp"})
"""Ops that write a whole variable (TF1 ref variables and resource variables)."""

INITIALIZED_CHECK_OPS = frozenset({"IsVariableInitialized", "VarIsInitializedOp"})
"""Ops that ask whether a variable has been initialized."""
