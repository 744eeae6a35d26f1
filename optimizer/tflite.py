"""TFLite: convert an optimized graph with TensorFlow's own converter, run it in the interpreter that ships with
TensorFlow, and compare it with the original graph run in TensorFlow.

Contract
- `convert` takes a Graph (its declared inputs and outputs become the model's) and `ConvertOptions`: float16
  weights, dynamic-range quantization, and whether select TF ops may be used. A converter failure raises
  `ConversionError` with the converter's first meaningful line (an MLIR error's message and the node it names).
  When every input has a static shape with a batch of 1, TensorList element shapes that leave the batch open are
  taken as batch 1 (the converter's `_experimental_default_to_single_batch_in_tensor_list_ops`), which is what
  lets a Keras RNN's `While` loop lower to TFLite builtins; the model is verified like any other.
- `run_tflite` feeds inputs by position (the Graph's input order), resizing dynamic dimensions to the fed shapes,
  and returns outputs in the Graph's output order (matched by the converter's output names).
- `verify_tflite` draws inputs as `optimizer.verify` does, runs the original in TensorFlow (its `variables`
  restored first, as `verify` does) and the model in `tf.lite.Interpreter`, and compares with the same rule and
  report; a model that fails to run fails every output.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from optimizer import sandbox
from optimizer._tf import tensorflow
from optimizer.errors import OptimizerError
from optimizer.function import as_function
from optimizer.initializers import ModelInit
from optimizer.ir import Graph, Tensor
from optimizer.protos import GraphDef
from optimizer.random_ops import Seeding, is_random_op, unseedable_candidate
from optimizer.tf_errors import describe
from optimizer.variables import VariableValues
from optimizer.verify import ATOL, RTOL, Tolerance, Verification, verify_runs


class ConversionError(OptimizerError):
    """The TFLite converter rejected the graph."""


@dataclass(frozen=True)
class ConvertOptions:
    """The converter's common choices."""

    float16: bool = False
    dynamic_range: bool = False
    select_tf_ops: bool = False


_MLIR_ERROR = re.compile(r"error: (?P<message>.*)$")
_MLIR_NODE = re.compile(r'fused\["(?P<op>[A-Za-z0-9_]+):", "(?P<node>[^"@]+)(?:@(?P<function>[^"]+))?"')
_STATIC_TENSOR_LIST = "requires element_shape to be static"


def _without_location(message: str) -> str:
    """`message` without a leading MLIR location `loc(...): ` (whose parentheses nest)."""
    message = message.strip()
    if not message.startswith("loc("):
        return message
    depth, quoted = 0, False
    for index, char in enumerate(message):
        if char == '"':
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
            if depth == 0:
                return message[index + 1 :].lstrip(": ").strip()
    return message


def first_meaningful_line(error: Exception) -> str:
    """The line of a converter error that says what went wrong: the first MLIR `error:` message (with the node it
    names), else the first line that reads like an error, else TensorFlow's reason (`tf_errors.describe`)."""
    if isinstance(error, tensorflow().errors.OpError):  # a run-time error: its first line is only a header
        return describe(error, limit=600)
    text = re.sub(r"\s*Previous definition: goo\.gle/debug\w*", "", str(error))  # a link, not the message
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        found = _MLIR_ERROR.search(line)
        if found and _without_location(found.group("message")):
            message = _without_location(found.group("message"))
            node = _MLIR_NODE.search(line)
            if node:
                where = node.group("node") + (
                    f" in function {node.group('function')}" if node.group("function") else ""
                )
                message += f" (node {where})"
            return message[:600]
    for line in lines:
        if re.search(r"error:|Error|not supported|failed", line) and "Traceback" not in line:
            return line[:600]
    return describe(error, limit=600)


def _single_batch(function: Any) -> bool:
    """Whether every input of the concrete function has a static shape, and each that has dimensions a batch
    of 1 (its first dimension)."""
    specs = function.structured_input_signature[0]
    batched = [spec.shape for spec in specs if spec.shape.rank != 0]
    return bool(batched) and all(shape.is_fully_defined() and shape[0] == 1 for shape in batched)


def configure(converter: Any, options: ConvertOptions) -> None:
    """Set `options` on a `tf.lite.TFLiteConverter`: weight types, quantization, the op sets allowed."""
    tf = tensorflow()
    if options.float16:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif options.dynamic_range:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if options.select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops


def convert(graph: Graph, options: ConvertOptions = ConvertOptions()) -> bytes:
    """The `.tflite` flatbuffer of `graph` (which should be frozen and optimized), converted in the limited child
    process (`optimizer.sandbox`, stage `tflite`)."""
    model: bytes = sandbox.call(
        "tflite", _convert_here, graph.to_graph_def(), graph.inputs, graph.outputs, graph.init, options
    )
    return model


def _convert_here(
    graph_def: GraphDef,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    init: ModelInit | None,
    options: ConvertOptions,
) -> bytes:
    """`convert`, in this process."""
    tf = tensorflow()
    try:
        function = as_function(graph_def, inputs, outputs, init)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([function], function)
    except OptimizerError:
        raise
    except Exception as error:  # the graph does not import, or its outputs depend on something not an input
        raise ConversionError(f"the TFLite converter rejected the graph: {first_meaningful_line(error)}") from error
    configure(converter, options)
    if _single_batch(function):
        # A TensorList (a Keras RNN's `While` loop) whose element shape leaves the batch open cannot be lowered to
        # TFLite's builtins; with every input fixed to batch 1 that dimension is 1.
        converter._experimental_default_to_single_batch_in_tensor_list_ops = True
    try:
        model: bytes = converter.convert()
    except Exception as error:  # the converter raises many types; all mean "rejected"
        message = first_meaningful_line(error)
        if _STATIC_TENSOR_LIST in message:
            message += "; fix the batch to 1 (--input-shape NAME:1,..., optimizer.load(input_shapes=...))"
        raise ConversionError(f"the TFLite converter rejected the graph: {message}") from error
    return model


def _interpreter(model: bytes) -> Any:
    tf = tensorflow()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "tf.lite.Interpreter is deprecated": it is the one TensorFlow ships
        return tf.lite.Interpreter(model_content=model)


def operator_count(model: bytes) -> int:
    """How many operators the TFLite model runs (its execution plan)."""
    interpreter = _interpreter(model)
    return len(interpreter._get_ops_details())  # the public API has no count


TFLITE_RANDOM_OPERATORS = frozenset({"RANDOM_UNIFORM", "RANDOM_STANDARD_NORMAL", "MULTINOMIAL"})
"""TFLite's builtin random operators (the TensorFlow ones run as Flex ops, `Flex<op>`)."""


def random_operators(model: bytes) -> list[str]:
    """The random operators the TFLite model runs: builtin ones, and TensorFlow random ops run as Flex ops."""
    names = [str(details["op_name"]) for details in _interpreter(model)._get_ops_details()]
    return sorted(
        {
            name
            for name in names
            if name in TFLITE_RANDOM_OPERATORS or (name.startswith("Flex") and is_random_op(name[len("Flex") :]))
        }
    )


def _signature_order(interpreter: Any) -> tuple[list[int], list[int]] | None:
    """The tensor indices of the model's only signature's inputs and outputs, each in sorted key order (the order
    `optimizer.load` gives a SavedModel signature's tensors), or None for a model with no or several signatures."""
    signatures = interpreter._get_full_signature_list()  # the public API gives the keys, not the tensors
    if len(signatures) != 1:
        return None
    (signature,) = signatures.values()
    return (
        [signature["inputs"][key] for key in sorted(signature["inputs"])],
        [signature["outputs"][key] for key in sorted(signature["outputs"])],
    )


def run_tflite(model: bytes, feeds: Sequence[np.ndarray], *, by_signature_keys: bool = False) -> list[np.ndarray]:
    """Run the model once on positional `feeds` (the graph's input order, which the converter keeps) and return
    its outputs in the graph's output order. Dynamic dimensions are resized to the fed shapes.
    `by_signature_keys`: the model was converted from a SavedModel signature, whose inputs and outputs are taken
    in sorted key order instead (as `optimizer.load` lists them)."""
    interpreter = _interpreter(model)
    inputs = [detail["index"] for detail in interpreter.get_input_details()]
    outputs = [detail["index"] for detail in interpreter.get_output_details()]
    order = _signature_order(interpreter) if by_signature_keys else None
    if order is not None:
        inputs, outputs = order
    details = {detail["index"]: detail for detail in interpreter.get_input_details()}
    for index, value in zip(inputs, feeds, strict=True):
        if list(details[index]["shape"]) != list(np.shape(value)):
            interpreter.resize_tensor_input(index, list(np.shape(value)))
    interpreter.allocate_tensors()
    for index, value in zip(inputs, feeds, strict=True):
        interpreter.set_tensor(index, np.asarray(value, dtype=details[index]["dtype"]))
    interpreter.invoke()
    return [np.array(interpreter.get_tensor(index)) for index in outputs]


def verify_tflite(
    original: GraphDef,
    model: bytes,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    **options: Any,
) -> Verification:
    """Compare the TFLite model with the original graph run in TensorFlow, on the same inputs: the keywords of
    `optimizer.verify.verify`, `variables` (a loaded checkpoint's values) restored into the original first, then its
    `init` run, and `words` for random strings; `by_signature_keys` as for `run_tflite`. The interpreter's random
    ops cannot be seeded: when the model has some (`random_operators`), the outputs that random ops of the original
    reach are not compared.

    It runs in the limited child process (`optimizer.sandbox`, stage `verification`), as `verify` does."""
    return sandbox.call("verification", _verify_tflite_here, original, model, inputs, outputs, **options)


def _verify_tflite_here(
    original: GraphDef,
    model: bytes,
    inputs: Sequence[Tensor],
    outputs: Sequence[Tensor],
    *,
    seed: int = 0,
    samples: int = 1,
    rtol: float = RTOL,
    atol: float = ATOL,
    tolerances: Mapping[str, Tolerance] | None = None,
    feeds: Mapping[str, np.ndarray] | None = None,
    ranges: Mapping[str, tuple[float, float]] | None = None,
    variables: VariableValues | None = None,
    init: ModelInit | None = None,
    words: Sequence[bytes] = (),
    by_signature_keys: bool = False,
) -> Verification:
    """`verify_tflite`, in this process."""

    def run_candidate(feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return run_tflite(model, [feeds[str(tensor)] for tensor in inputs], by_signature_keys=by_signature_keys)

    return verify_runs(
        original,
        run_candidate,
        "the TFLite model",
        inputs,
        outputs,
        seed=seed,
        samples=samples,
        rtol=rtol,
        atol=atol,
        tolerances=tolerances,
        feeds=feeds,
        ranges=ranges,
        variables=variables,
        seeding=unseedable_candidate(original, [str(tensor) for tensor in outputs])
        if random_operators(model)
        else Seeding(original, None),
        init=init,
        words=words,
    )
