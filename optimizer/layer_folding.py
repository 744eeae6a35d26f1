"""Folding per-channel affine tails (batch norms, bias adds, scales) into the weights of the convolution or matmul
before them, and decomposing the batch norms that cannot be folded.

The `fold-batch-norms` pass (`passes/fold_batch_norms.py`, whose contract describes every fold and guard) runs
`fold_into_layer` on every layer and `decompose_batch_norm` on every batch norm left; `arith` folds a constant
scale into a layer with `fold_into_layer(..., ELEMENTWISE_STEP_OPS, evaluate=False)`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from optimizer.ir import Graph, Tensor
from optimizer.pass_base import PassContext
from optimizer.patterns import Constant, const_value, evaluate_constant, forward, remove_dead
from optimizer.protos import AttrValue, DataType
from optimizer.tensor import const_attrs

log = logging.getLogger(__name__)

LAYER_OPS = frozenset({"Conv2D", "DepthwiseConv2dNative", "Conv3D", "MatMul"})
BATCH_NORM_OPS = frozenset({"FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"})
ELEMENTWISE_STEP_OPS = frozenset({"BiasAdd", "Add", "AddV2", "Sub", "Mul", "RealDiv"})
ALL_STEP_OPS = ELEMENTWISE_STEP_OPS | BATCH_NORM_OPS
FLOAT_TYPES = frozenset({DataType.Value("DT_FLOAT"), DataType.Value("DT_DOUBLE")})
CHANNELS_FIRST = frozenset({"NCHW", "NCDHW"})
CHANNELS_LAST = frozenset({"NHWC", "NDHWC"})
_RANK = {"Conv2D": 4, "DepthwiseConv2dNative": 4, "Conv3D": 5, "MatMul": 2}


@dataclass(frozen=True)
class Layer:
    """A convolution or matmul with constant, exclusively owned weights."""

    name: str
    op: str
    weight: str  # the Const node
    dtype: int  # DataType enum of the layer
    rank: int  # of its output
    channel_axis: int  # of its output, non-negative
    channels: int
    transposed: bool = False  # a MatMul with `transpose_b`: weights [C, K]


@dataclass(frozen=True)
class Step:
    """One affine step of a tail: `node` reads the running value at input `index`."""

    node: str
    scale: np.ndarray  # float64 [C]: v -> v * scale + shift
    shift: np.ndarray
    operands: tuple[Constant, ...]


def _string_attr(graph: Graph, name: str, key: str, default: str) -> str:
    attrs = graph.node(name).attrs
    return attrs[key].s.decode() if key in attrs else default


def match_layer(graph: Graph, name: str) -> Layer | str:
    """The layer `name`, or the reason it cannot take a fold."""
    op = graph.op(name)
    if op not in LAYER_OPS:
        return f"{op} is not a convolution or matmul"
    if graph.is_protected(name):
        return "it is a graph input or output: its value must not change"
    attrs = graph.node(name).attrs
    dtype = attrs["T"].type if "T" in attrs else 0
    if dtype not in FLOAT_TYPES:
        return "its dtype is not float32 or float64"
    inputs = graph.inputs_of(name)
    if len(inputs) != 2:
        return "it does not have two inputs"
    weight = inputs[1]
    if weight.port != 0 or graph.op(weight.node) != "Const" or graph.is_protected(weight.node):
        return "its weights are not a Const of its own"
    readers = {use.node for _, use in graph.data_consumers(weight.node)}
    if readers != {name} or len(graph.data_consumers(weight.node)) != 1:
        return f"its weights {weight.node} are shared with {', '.join(sorted(readers - {name}))}"
    shape = [int(dim.size) for dim in graph.node(weight.node).attrs["value"].tensor.tensor_shape.dim]
    rank = _RANK[op]
    if op == "MatMul":
        if len(shape) != 2:
            return "its weights are not a matrix"
        transpose_b = "transpose_b" in attrs and attrs["transpose_b"].b
        return Layer(name, op, weight.node, dtype, 2, 1, shape[0] if transpose_b else shape[1], transpose_b)
    data_format = _string_attr(graph, name, "data_format", "NDHWC" if op == "Conv3D" else "NHWC")
    if data_format in CHANNELS_LAST:
        axis = rank - 1
    elif data_format in CHANNELS_FIRST:
        axis = 1
    else:
        return f"data format {data_format} is not handled"
    if len(shape) != rank:
        return f"its filter has rank {len(shape)}, not {rank}"
    channels = shape[2] * shape[3] if op == "DepthwiseConv2dNative" else shape[-1]
    return Layer(name, op, weight.node, dtype, rank, axis, channels)


def channel_vector(value: np.ndarray, layer: Layer) -> np.ndarray | None:
    """`value` as a float64 vector over the layer's output channels, when it broadcasts along that axis only."""
    if value.ndim > layer.rank:
        return None
    shape = (1,) * (layer.rank - value.ndim) + value.shape
    if any(size != 1 for axis, size in enumerate(shape) if axis != layer.channel_axis):
        return None
    if shape[layer.channel_axis] not in (1, layer.channels):
        return None
    return np.broadcast_to(value.reshape(-1).astype(np.float64), (layer.channels,)).copy()


def _constant(graph: Graph, tensor: Tensor, evaluate: bool) -> Constant | None:
    if evaluate:
        return evaluate_constant(graph, tensor)
    value = const_value(graph, tensor)
    if value is None or value.dtype.kind != "f":
        return None
    return Constant(value, frozenset({tensor.node}), tuple(graph.control_inputs_of(tensor.node)))


def batch_norm_refusal(graph: Graph, name: str) -> str | None:
    """Why the `FusedBatchNorm*` node `name` cannot be rewritten as a per-channel affine map, or None."""
    attrs = graph.node(name).attrs
    if "is_training" not in attrs or attrs["is_training"].b:
        return "it is in training mode (normalizes with batch statistics)"
    if attrs["T"].type not in FLOAT_TYPES:
        return "its dtype is not float32 or float64"
    if any(port != 0 for port, _ in graph.data_consumers(name)):
        return "a side output (mean, variance, reserve space) is read"
    if any(tensor.node == name and tensor.port != 0 for tensor in graph.outputs):
        return "a side output is a graph output"
    if len(graph.inputs_of(name)) != 5:
        return "it does not have five inputs"
    return None


def batch_norm_affine(graph: Graph, name: str, evaluate: bool) -> tuple[np.ndarray, np.ndarray, list[Constant]] | None:
    """`(s, b, operands)` of the inference-mode batch norm `name`: `y = x * s + b` per channel (float64)."""
    _, *parameters = graph.inputs_of(name)
    operands = [_constant(graph, tensor, evaluate) for tensor in parameters]
    if any(operand is None for operand in operands):
        return None
    found = [operand for operand in operands if operand is not None]
    gamma, beta, mean, variance = (operand.value.astype(np.float64) for operand in found)
    if not (gamma.ndim == beta.ndim == mean.ndim == variance.ndim == 1):
        return None
    if not (gamma.shape == beta.shape == mean.shape == variance.shape):
        return None
    epsilon = float(graph.node(name).attrs["epsilon"].f) if "epsilon" in graph.node(name).attrs else 1e-4
    scale = gamma / np.sqrt(variance + epsilon)
    return scale, beta - mean * scale, found


def _step(graph: Graph, layer: Layer, node: str, index: int, ops: Collection[str], evaluate: bool) -> Step | None:
    op = graph.op(node)
    if op not in ops:
        return None
    attrs = graph.node(node).attrs
    if op in BATCH_NORM_OPS:
        if index != 0 or batch_norm_refusal(graph, node) is not None:
            return None
        data_format = _string_attr(graph, node, "data_format", "NHWC")
        axis = 1 if data_format in CHANNELS_FIRST else layer.rank - 1
        if axis != layer.channel_axis or attrs["T"].type != layer.dtype:
            return None
        affine = batch_norm_affine(graph, node, evaluate)
        if affine is None or affine[0].shape != (layer.channels,):
            return None
        scale, shift, operands = affine
        return Step(node, scale, shift, tuple(operands))
    inputs = graph.inputs_of(node)
    if len(inputs) != 2 or ("T" in attrs and attrs["T"].type != layer.dtype):
        return None
    operand = _constant(graph, inputs[1 - index], evaluate)
    if operand is None:
        return None
    vector = channel_vector(operand.value, layer)
    if vector is None:
        return None
    ones, zeros = np.ones(layer.channels), np.zeros(layer.channels)
    if op == "BiasAdd":
        data_format = _string_attr(graph, node, "data_format", "NHWC")
        axis = 1 if data_format == "NCHW" else layer.rank - 1
        if index != 0 or operand.value.ndim != 1 or axis != layer.channel_axis:
            return None
        return Step(node, ones, vector, (operand,))
    if op in ("Add", "AddV2"):
        return Step(node, ones, vector, (operand,))
    if op == "Sub":
        if index == 0:
            return Step(node, ones, -vector, (operand,))
        return Step(node, -ones, vector, (operand,))
    if op == "Mul":
        return Step(node, vector, zeros, (operand,))
    if op == "RealDiv" and index == 0 and np.all(vector != 0):
        return Step(node, 1.0 / vector, zeros, (operand,))
    return None


def affine_tail(graph: Graph, layer: Layer, ops: Collection[str], evaluate: bool) -> list[Step]:
    """The longest per-channel affine chain after `layer` (see the module docstring)."""
    steps: list[Step] = []
    tail = layer.name
    while True:
        if tail != layer.name and (graph.is_protected(tail) or graph.control_consumers(tail)):
            break
        consumers = graph.data_consumers(tail)
        if len(consumers) != 1 or consumers[0][0] != 0:
            break
        use = consumers[0][1]
        step = _step(graph, layer, use.node, use.index, ops, evaluate)
        if step is None:
            break
        steps.append(step)
        tail = step.node
    return steps


def _is_canonical(graph: Graph, steps: list[Step]) -> bool:
    """One BiasAdd of a Const: the form a fold produces, left alone."""
    if len(steps) != 1 or graph.op(steps[0].node) != "BiasAdd":
        return False
    (operand,) = steps[0].operands
    return len(operand.nodes) == 1 and graph.op(next(iter(operand.nodes))) == "Const"


def scale_weights(layer: Layer, weights: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """`weights * scale` along the layer's output channels (float64 in, float64 out)."""
    if layer.op == "MatMul":
        return weights * (scale[:, np.newaxis] if layer.transposed else scale[np.newaxis, :])
    if layer.op == "DepthwiseConv2dNative":
        return weights * scale.reshape(weights.shape[2], weights.shape[3])
    return weights * scale


def _reusable_bias(graph: Graph, steps: list[Step], bias: np.ndarray) -> str | None:
    """An operand `Const` of the tail that already holds exactly `bias` (an `Add` of a bias vector becoming a
    `BiasAdd`): reading it is as good as a new constant, and it is one node fewer."""
    for step in steps:
        for operand in step.operands:
            (node,) = operand.nodes if len(operand.nodes) == 1 else (None,)
            if node is None or graph.op(node) != "Const" or operand.value.dtype != bias.dtype:
                continue
            if operand.value.shape == bias.shape and operand.value.tobytes() == bias.tobytes():
                return node
    return None


def _dtype_attr(dtype: int) -> AttrValue:
    return AttrValue(type=dtype)


def _numpy_dtype(dtype: int) -> type:
    return np.float64 if dtype == DataType.Value("DT_DOUBLE") else np.float32


def fold_into_layer(
    graph: Graph,
    ctx: PassContext,
    name: str,
    ops: Collection[str] = ALL_STEP_OPS,
    *,
    evaluate: bool = True,
) -> bool:
    """Fold the affine tail after the layer `name` into its weights and one bias; return whether it did."""
    layer = match_layer(graph, name)
    if isinstance(layer, str):
        log.debug("fold: %s: %s", name, layer)
        return False
    steps = affine_tail(graph, layer, ops, evaluate)
    if not steps or _is_canonical(graph, steps):
        return False
    weights = const_value(graph, Tensor(layer.weight))
    if weights is None:  # its bytes do not decode (a damaged constant): leave the layer as it is
        log.debug("fold: %s: its weights %s do not decode", name, layer.weight)
        return False
    if not ctx.allow_rewrite():
        return False
    scale, shift = np.ones(layer.channels), np.zeros(layer.channels)
    for step in steps:
        scale, shift = scale * step.scale, shift * step.scale + step.shift
    weight_node = graph.node(layer.weight)
    dtype = _numpy_dtype(layer.dtype)
    if not np.all(scale == 1.0):
        scaled = scale_weights(layer, weights.astype(np.float64), scale).astype(weights.dtype)
        graph.set_attr(layer.weight, "value", const_attrs(scaled)["value"])
    last = steps[-1].node
    absorbed = [step.node for step in steps[:-1]]
    control = dict.fromkeys(source for node in absorbed for source in graph.control_inputs_of(node))
    seeds = [*absorbed, *(node for step in steps for operand in step.operands for node in operand.nodes)]
    if np.any(shift.astype(dtype) != 0):
        frame = dict.fromkeys(
            [source for step in steps for operand in step.operands for source in operand.control_inputs]
            + graph.control_inputs_of(layer.weight)
        )
        bias = _reusable_bias(graph, steps, shift.astype(dtype)) or graph.add_node(
            f"{last}/bias",
            "Const",
            control_inputs=list(frame),
            attrs=const_attrs(shift.astype(dtype)),
            device=weight_node.device,
        )
        graph.set_inputs(last, [Tensor(layer.name), Tensor(bias)])
        for key in list(graph.node(last).attrs):
            graph.del_attr(last, key)
        graph.set_op(last, "BiasAdd")
        graph.set_attr(last, "T", _dtype_attr(layer.dtype))
        channels_first = layer.channel_axis == 1 and layer.rank > 2
        graph.set_attr(last, "data_format", AttrValue(s=b"NCHW" if channels_first else b"NHWC"))
        for source in control:
            graph.add_control_input(last, source)
    else:
        forward(graph, last, Tensor(layer.name), list(control))
        seeds.append(last)
    remove_dead(graph, seeds)
    ctx.logger.info("fold-batch-norms: folded %s into %s", ", ".join(step.node for step in steps), layer.name)
    return True


def decompose_batch_norm(graph: Graph, ctx: PassContext, name: str) -> bool:
    """Rewrite the inference-mode `FusedBatchNorm*` `name` as `Mul` + `AddV2` of constants; return whether it did."""
    reason = batch_norm_refusal(graph, name)
    affine = None if reason is not None else batch_norm_affine(graph, name, True)
    if affine is None:
        log.debug("fold-batch-norms: keep %s: %s", name, reason or "its parameters are not constant vectors")
        return False
    if not ctx.allow_rewrite():
        return False
    scale, shift, operands = affine
    node = graph.node(name)
    dtype_enum = node.attrs["T"].type
    dtype = _numpy_dtype(dtype_enum)
    data_format = _string_attr(graph, name, "data_format", "NHWC")
    if data_format in CHANNELS_FIRST:
        trailing = 3 if data_format == "NCDHW" else 2
        shape = (scale.size,) + (1,) * trailing
    else:
        shape = (scale.size,)
    frame = list(dict.fromkeys(source for operand in operands for source in operand.control_inputs))
    x = graph.inputs_of(name)[0]
    scale_node = graph.add_node(
        f"{name}/scale",
        "Const",
        control_inputs=frame,
        attrs=const_attrs(scale.astype(dtype).reshape(shape)),
        device=node.device,
    )
    shift_node = graph.add_node(
        f"{name}/offset",
        "Const",
        control_inputs=frame,
        attrs=const_attrs(shift.astype(dtype).reshape(shape)),
        device=node.device,
    )
    multiply = graph.add_node(
        f"{name}/mul", "Mul", [x, Tensor(scale_node)], attrs={"T": _dtype_attr(dtype_enum)}, device=node.device
    )
    graph.set_inputs(name, [Tensor(multiply), Tensor(shift_node)])
    for key in list(node.attrs):
        graph.del_attr(name, key)
    graph.set_op(name, "AddV2")
    graph.set_attr(name, "T", _dtype_attr(dtype_enum))
    remove_dead(graph, [node for operand in operands for node in operand.nodes])
    ctx.logger.info("fold-batch-norms: %s is now Mul + AddV2 of constants", name)
    return True
