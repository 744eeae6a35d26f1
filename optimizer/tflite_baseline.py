"""What TensorFlow alone makes of a model for TFLite: the conversion without this tool that `optimize` compares
its own `.tflite` with (`--compare-converter`, `benchmarks/tflite.py`).

Contract
- `convert_without_optimizing(path, graph, options)` converts the model at `path` as a user without this tool
  would, with the same `ConvertOptions`:
  - a SavedModel (TF1 or TF2): `tf.lite.TFLiteConverter.from_saved_model` on the folder, for the signature and
    tags it was loaded with;
  - a model whose variables come from a checkpoint (a TF1 meta graph, a GraphDef with `--checkpoint`): frozen by
    TensorFlow's own `tf.compat.v1.graph_util.convert_variables_to_constants` in a session where the checkpoint's
    values are restored, for the graph's output nodes, then converted from that GraphDef through
    `tf.lite.TFLiteConverter.from_concrete_functions` (the entry `optimizer.tflite.convert` uses, so the two
    conversions differ only in the graph they are given);
  - a GraphDef without variables: converted as it is, the same way.
  `graph` is the loaded model before any pass (its interface, input shapes and variable values).
- Never raises for a model the converter or the freezer rejects: the `Baseline` then holds no model and the
  rejection's first meaningful line in `error`. Its model's inputs and outputs come in the order of
  `graph.inputs`/`graph.outputs` (for a SavedModel: `run_tflite(..., by_signature_keys=True)`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from optimizer import sandbox
from optimizer._tf import tensorflow
from optimizer.function import as_function
from optimizer.initializers import ModelInit
from optimizer.ir import Graph, Tensor
from optimizer.loading import model_kind
from optimizer.protos import GraphDef
from optimizer.saved_model import DEFAULT_SIGNATURE, DEFAULT_TAG
from optimizer.session import open_session
from optimizer.tflite import ConvertOptions, configure, first_meaningful_line, operator_count
from optimizer.variables import VariableValues
from optimizer.verify import Verification


@dataclass
class Baseline:
    """The TFLite model TensorFlow alone makes (None when it rejects the model), how it was made, and why not;
    `verification`: how its outputs compare with the original's, when the caller checked."""

    how: str
    model: bytes | None = None
    error: str | None = None
    from_saved_model: bool = False
    verification: Verification | None = None

    @property
    def size(self) -> int | None:
        return None if self.model is None else len(self.model)

    @property
    def operators(self) -> int | None:
        return None if self.model is None else operator_count(self.model)

    def to_dict(self) -> dict[str, Any]:
        return {
            "how": self.how,
            "bytes": self.size,
            "operators": self.operators,
            "error": self.error,
            "verification": self.verification.to_dict() if self.verification else None,
        }


def _frozen_by_tensorflow(graph_def: GraphDef, outputs: Sequence[Tensor], variables: VariableValues) -> Any:
    """`graph_def` frozen by `convert_variables_to_constants`, its variables restored from `variables`."""
    tf = tensorflow()
    nodes = list(dict.fromkeys(tensor.node for tensor in outputs))
    with open_session(graph_def) as session:
        variables.assign_all(session)
        return tf.compat.v1.graph_util.convert_variables_to_constants(session, graph_def, nodes)


def convert_without_optimizing(
    path: str | os.PathLike[str],
    graph: Graph,
    options: ConvertOptions | None = None,
    *,
    signature: str | None = None,
    tag: str | None = None,
) -> Baseline:
    """Convert the model at `path` with TensorFlow alone (see the module docstring), in the limited child process
    (`optimizer.sandbox`, stage `tflite`)."""
    return cast(
        Baseline,
        sandbox.call(
            "tflite",
            _convert_here,
            path,
            graph.to_graph_def(),
            graph.inputs,
            graph.outputs,
            graph.init,
            graph.variables,
            options,
            signature,
            tag,
        ),
    )


def _convert_here(
    path: str | os.PathLike[str],
    graph_def: GraphDef,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    init: ModelInit | None,
    variables: VariableValues | None,
    options: ConvertOptions | None,
    signature: str | None,
    tag: str | None,
) -> Baseline:
    """`convert_without_optimizing`, in this process."""
    tf = tensorflow()
    if model_kind(path) == "saved_model":
        key = signature or DEFAULT_SIGNATURE
        tags = {part.strip() for part in (tag or DEFAULT_TAG).split(",") if part.strip()}
        baseline = Baseline(f"tf.lite.TFLiteConverter.from_saved_model (signature {key})", from_saved_model=True)
        try:
            converter = tf.lite.TFLiteConverter.from_saved_model(str(path), signature_keys=[key], tags=tags)
        except Exception as error:
            baseline.error = first_meaningful_line(error)
            return baseline
    else:
        how = "convert_variables_to_constants, then " if variables is not None else ""
        baseline = Baseline(how + "tf.lite.TFLiteConverter.from_concrete_functions")
        try:
            if variables is not None:
                graph_def = _frozen_by_tensorflow(graph_def, outputs, variables)
            function = as_function(graph_def, inputs, outputs, init)
            converter = tf.lite.TFLiteConverter.from_concrete_functions([function], function)
        except Exception as error:
            baseline.error = first_meaningful_line(error)
            return baseline
    configure(converter, options or ConvertOptions())
    try:
        baseline.model = converter.convert()
    except Exception as error:  # the converter raises many types; all mean "rejected"
        baseline.error = first_meaningful_line(error)
    return baseline
