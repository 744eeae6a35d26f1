"""Which ops exist only for training: updates, savers, summaries, initializers, debug checks.

Shared by the `strip` pass (which removes them) and by output inference (a sink that only training
machinery reaches is not a model output).
"""

from __future__ import annotations

import re

from optimizer.ir import Graph
from optimizer.opinfo import INITIALIZED_CHECK_OPS

VARIABLE_UPDATE_OPS = frozenset(
    {
        "Assign",
        "AssignAdd",
        "AssignSub",
        "AssignVariableOp",
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "ScatterAdd",
        "ScatterSub",
        "ScatterMul",
        "ScatterDiv",
        "ScatterMin",
        "ScatterMax",
        "ScatterUpdate",
        "ScatterNdAdd",
        "ScatterNdSub",
        "ScatterNdUpdate",
        "ResourceScatterAdd",
        "ResourceScatterSub",
        "ResourceScatterMul",
        "ResourceScatterDiv",
        "ResourceScatterMin",
        "ResourceScatterMax",
        "ResourceScatterUpdate",
        "ResourceScatterNdAdd",
        "ResourceScatterNdSub",
        "ResourceScatterNdUpdate",
        "CountUpTo",
        "ResourceCountUpTo",
    }
)

SAVER_OPS = frozenset(
    {
        "SaveV2",
        "Save",
        "SaveSlices",
        "RestoreV2",
        "Restore",
        "RestoreSlice",
        "MergeV2Checkpoints",
        "ShardedFilename",
        "ShardedFilespec",
    }
)


DEBUG_OPS = frozenset({"Assert", "CheckNumerics", "Print", "PrintV2"})

_TRAINING_OP = re.compile(
    r"^(Resource)?(Sparse)?Apply[A-Z]\w*$"  # optimizer updates: ApplyAdam, ResourceApplyGradientDescent, ...
    r"|\w*Summary(V2)?$"  # ScalarSummary, HistogramSummary, MergeSummary, WriteScalarSummary, ...
    r"|^CreateSummary(File|Db)Writer$|^(Flush|Close)SummaryWriter$|^SummaryWriter$|^WriteSummary$|^ImportEvent$"
)


def is_training_op(op: str) -> bool:
    """True for ops an inference graph never needs: variable updates, optimizer steps, savers, summaries,
    initializer checks. Debug checks (`DEBUG_OPS`) are handled apart, since they sit on the live path."""
    return (
        op in VARIABLE_UPDATE_OPS
        or op in SAVER_OPS
        or op in INITIALIZED_CHECK_OPS
        or _TRAINING_OP.match(op) is not None
    )


def training_reach(graph: Graph) -> set[str]:
    """Every node that a training op reaches through data or control edges, the training ops included."""
    return graph.reachable(training_nodes(graph))


def training_nodes(graph: Graph) -> list[str]:
    """The nodes whose op `is_training_op` (found through the graph's op index, not a sweep)."""
    return graph.nodes_of(op for op in graph.op_counts() if is_training_op(op))
