"""The library's front door: `load`, `optimize`, `save`."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence

from optimizer.call_graph import check_not_recursive
from optimizer.errors import OptimizerError
from optimizer.graph_io import write_graph_def
from optimizer.invariants import check_constant_shapes, check_graph, check_input_counts
from optimizer.ir import Graph
from optimizer.loading import load_model
from optimizer.manager import PassManager, PassRecord, RunReport
from optimizer.pass_base import Pass, PassContext
from optimizer.pipeline import Pipeline
from optimizer.registry import DEFAULT_PIPELINE
from optimizer.signature import default_inputs, default_outputs, fix_input_shapes, parse_input_shapes, resolve
from optimizer.tables import embed_tables
from optimizer.targets import Target, get_target


def load(
    path: str | os.PathLike[str],
    inputs: Sequence[str] | None = None,
    outputs: Sequence[str] | None = None,
    *,
    input_shapes: Mapping[str, Sequence[int | None]] | Sequence[str] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    signature: str | None = None,
    tag: str | None = None,
) -> Graph:
    """Load a GraphDef file (binary or text) as a Graph. `inputs`/`outputs` are `node` or `node:port` names;
    when omitted, the inputs are the placeholders and the outputs the sinks (see `optimizer.signature`).
    `input_shapes` fixes placeholder shapes (`{"images": [1, 224, 224, 3]}`, or `["images:1,224,224,3"]`;
    None or -1 for a dimension that stays dynamic), which lets `fold` materialize more shapes.
    Also loads a TF1 `.meta` (with `checkpoint`, default: the latest next to it), a GraphDef with a `checkpoint`,
    and a SavedModel folder (`signature`, `tag`; its signature gives the default interface); variable values
    are attached as `graph.variables` for the `freeze` pass (see `optimizer.loading`).
    A recursive function library is refused (`optimizer.call_graph`)."""
    where = str(path)
    try:
        model = load_model(path, checkpoint=checkpoint, signature=signature, tag=tag)
        graph = model.graph
        check_not_recursive(graph.library)  # TensorFlow crashes on a recursive library; no pass walks one either
        inputs = model.inputs if inputs is None else inputs
        outputs = model.outputs if outputs is None else outputs
        if input_shapes:
            shapes = input_shapes if isinstance(input_shapes, Mapping) else parse_input_shapes(input_shapes)
            fix_input_shapes(graph, shapes, where)
        graph.inputs = resolve(graph, inputs, "input", where) if inputs is not None else default_inputs(graph)
        graph.outputs = resolve(graph, outputs, "output", where) if outputs is not None else default_outputs(graph)
        check_graph(graph)  # a broken file (a cycle, a port that does not exist) is refused before any pass
        check_input_counts(graph)  # and so is a node with more or fewer data inputs than its op takes
        check_constant_shapes(graph)  # and a constant of a negative dimension
    except OptimizerError as error:
        if error.path is None:
            raise type(error)(str(error), where) from error
        raise
    return graph


def optimize(
    graph: Graph,
    passes: str | Sequence[Pass] | Pipeline | None = None,
    *,
    fixed_point: bool | None = None,
    max_rewrites: int | None = None,
    keep_going: bool = False,
    after_change: Sequence[Callable[[PassRecord, Graph], None]] = (),
    before_pass: Sequence[Callable[[str, int], None]] = (),
    target: str | Target | None = None,
) -> RunReport:
    """Run `passes` (a pipeline string, pass instances, or None for the default pipeline) over `graph` in place,
    repeating the pipeline until a round changes nothing (at most 10 rounds) when `fixed_point` is true; by
    default the default pipeline does so and an explicit one runs once.
    `target` (`"tflite"`, see `optimizer.targets`) runs that target's preset pipeline instead, to a fixed point,
    and raises an OptimizerError when the result still holds what the target's consumer rejects.
    `max_rewrites` stops the passes after that many rewrites in all (to isolate a bad rewrite); `keep_going` and
    `after_change` and `before_pass` are the PassManager's.
    First, a model's lookup tables are filled from constants behind one initializer node (`optimizer.tables`), so
    the result needs no asset file; `graph.init` then names that node, which whoever runs the graph runs first."""
    preset = get_target(target) if isinstance(target, str) else target
    if preset is not None and passes is not None:
        raise OptimizerError(f"give either passes or a target, not both (target {preset.name} has its own pipeline)")
    if fixed_point is None:
        fixed_point = passes is None  # the default pipeline runs to a (bounded) fixed point
    context = PassContext(max_rewrites=max_rewrites)
    pipeline = preset.pipeline if preset is not None else DEFAULT_PIPELINE if passes is None else passes
    manager = PassManager(
        pipeline,
        fixed_point=fixed_point or (preset is not None and preset.fixed_point),
        context=context,
        keep_going=keep_going,
        after_change=after_change,
        before_pass=before_pass,
    )
    embed_tables(graph)
    report = manager.run(graph)
    if preset is not None and max_rewrites is None:
        preset.check(graph)
    return report


def save(graph: Graph, path: str | os.PathLike[str], fmt: str | None = None) -> int:
    """Write `graph` to `path` atomically (`fmt` `pb` or `pbtxt`, else from the extension); return bytes written."""
    return write_graph_def(graph, path, fmt)
