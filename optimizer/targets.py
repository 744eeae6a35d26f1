"""Targets: preset pipelines that prepare a graph for one consumer, and what that consumer cannot take.

Contract
- A `Target` is a name, a pipeline string (built-in passes only, in the order they must run), whether the
  pipeline runs to a fixed point, and a check of the result: `problems(graph)` lists what is left that the
  consumer rejects, one line each. `optimizer.optimize(graph, target="tflite")` runs the pipeline and raises an
  `OptimizerError` naming those problems; the CLI takes `--target tflite`.
- `tflite`: what TensorFlow Lite's converter (`tf.lite.TFLiteConverter`, which `optimizer.tflite.convert` calls)
  needs from a graph:
  - `inline`: function calls become graph nodes, so that variables read inside them can be frozen (TF2
    SavedModels read every weight inside `StatefulPartitionedCall`s); functional `If`/`While`/`Case` are kept,
    which TFLite runs as they are;
  - `unfuse`: the fused ops Grappler writes (`_FusedConv2D`, `_FusedMatMul`, `_FusedBatchNormEx`, ...) become
    the public ops they stand for (`Conv2D` + `BiasAdd` + `Relu`, ...), which the converter knows;
  - `freeze`: variables become constants (the converter takes no variables: ref-typed `Switch`es and resource
    arguments of `If` branches are what it rejects in graphs frozen by TensorFlow's own
    `convert_variables_to_constants`), updates and optimizer state go;
  - `strip`: training ops, savers, summaries and debug checks go; the Keras learning phase becomes `False`;
  - `identity`, `fold`, `fold-batch-norms`, `arith`, `cse`: forwarding ops go, constants are folded (dead
    `cond` branches with them), batch norms fold into the convolutions before them;
  - `branch-outputs`: the gradient intermediates a control-flow-v2 `If` still returns (`Optional*` ops, which
    the converter rejects) go;
  - `prune`: what no output needs goes;
  - `default-attrs`: every op's default attr values are written out (the converter re-registers the functions
    it rewrites with their defaults filled in, and a body saved without them clashes with itself);
  and the check refuses ops internal to TensorFlow that are left (`_`-prefixed ops `unfuse` cannot split: no
  converter or runtime outside TensorFlow knows them) and variables left without a value.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from optimizer.errors import OptimizerError
from optimizer.ir import Graph
from optimizer.variables import is_variable_node

TFLITE_PIPELINE = (
    "inline,unfuse,freeze,strip,prune,identity,fold-batch-norms,cse,fold,arith,cse,branch-outputs,prune,default-attrs"
)


def internal_ops(graph: Graph) -> dict[str, int]:
    """Ops internal to TensorFlow (`_`-prefixed, not a library function) in the graph and its functions, counted."""
    functions = {function.signature.name for function in graph.library.function}
    ops = [node.op for node in graph.nodes()]
    ops += [node.op for function in graph.library.function for node in function.node_def]
    counts: dict[str, int] = {}
    for op in ops:
        if op.startswith("_") and op not in functions:
            counts[op] = counts.get(op, 0) + 1
    return counts


def tflite_problems(graph: Graph) -> list[str]:
    """What the TFLite converter would reject in `graph` that the `tflite` pipeline could not remove."""
    problems = []
    internal = internal_ops(graph)
    if internal:
        listed = ", ".join(f"{op} ({count})" for op, count in sorted(internal.items()))
        problems.append(f"ops internal to TensorFlow, which the converter does not know: {listed}")
    variables = sorted(node.name for node in graph.nodes() if is_variable_node(node.proto))
    if variables:
        shown = ", ".join(variables[:5]) + (f", ... ({len(variables) - 5} more)" if len(variables) > 5 else "")
        problems.append(f"variables without a value to freeze (load the model with its checkpoint): {shown}")
    return problems


@dataclass(frozen=True)
class Target:
    """A preset pipeline for one consumer, and the check of what that consumer cannot take."""

    name: str
    pipeline: str
    fixed_point: bool
    problems: Callable[[Graph], list[str]]
    description: str = ""

    def check(self, graph: Graph) -> None:
        """Raise an OptimizerError naming what is left in `graph` that the consumer rejects."""
        found = self.problems(graph)
        if found:
            raise OptimizerError(f"target {self.name}: the graph still holds " + "; ".join(found))


TARGETS: dict[str, Target] = {
    "tflite": Target(
        "tflite",
        TFLITE_PIPELINE,
        fixed_point=True,
        problems=tflite_problems,
        description="a graph TensorFlow Lite's converter takes: frozen, inference-only, folded, defaults explicit",
    ),
}


def get_target(name: str) -> Target:
    """The target named `name`; an unknown name raises an OptimizerError listing the known ones."""
    if name not in TARGETS:
        raise OptimizerError(f"unknown target {name!r}; known targets: {', '.join(TARGETS)}")
    return TARGETS[name]
