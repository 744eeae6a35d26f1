"""`arith`: algebraic simplification by a table of rewrite rules, matched by op.

Contract
- Each rule in `RULES` is one line: the ops it matches, the rewrite, and what it does. Every rule keeps the value,
  dtype and static shape of the tensors that stay; a rule whose safety depends on a shape asks TensorFlow's static
  shape inference (`optimizer.shapes`, computed once per run) and does nothing when the shape is not known. Float
  rewrites may change the last bits (`(x*c1)*c2` becomes `x*(c1*c2)`); `x+0` may turn `-0.0` into `+0.0`.
- Constants are `Const` nodes (not fed as graph inputs); a new constant is computed with numpy in the dtype of the
  ones it replaces and keeps their control inputs (a constant in a loop or branch stays in its frame). Nothing is
  rewritten when every operand is constant: that is the `fold` pass's job.
- A rewrite never skips over a graph input (`-(-x)` where the inner `Neg` is fed keeps reading the fed value).
- Removing a node (`x*1 -> x`) moves its readers to the kept tensor. A node that holds a graph output, has control
  inputs or control consumers, or whose dropped operands have control inputs, becomes an `Identity` under its own
  name instead, with those control inputs; the `identity` pass decides whether it can go. A bypassed inner node's
  control inputs move to the node that skips it. Nodes a rewrite leaves unused are removed.
- `Mul`/`Add`/`AddV2`/`Sub`/`RealDiv`/`BiasAdd` by constants after a `Conv2D`, `DepthwiseConv2dNative`, `Conv3D`
  or `MatMul` fold into its weights and one bias, with the guards of `fold-batch-norms` (a weight another node
  reads is never changed); batch norms themselves are that pass's job.
- The rules run from a worklist in topological order until none applies, so one run reaches a fixed point and a
  second run changes nothing.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from optimizer import Graph, Node, Pass, PassContext, Tensor
from optimizer.layer_folding import ELEMENTWISE_STEP_OPS, LAYER_OPS, fold_into_layer
from optimizer.patterns import (
    const_shape,
    const_value,
    forward,
    is_const,
    remove_dead,
    topological_order,
)
from optimizer.protos import AttrValue, NodeDef
from optimizer.shapes import Shape, StaticShapes, broadcast_keeps_shape, is_fully_defined
from optimizer.tensor import const_attrs

log = logging.getLogger(__name__)

NUMERIC_KINDS = frozenset("iufc")
RESHAPES = frozenset({"Reshape", "Squeeze", "ExpandDims"})
INVOLUTIONS = frozenset({"Neg", "LogicalNot", "Conj", "Invert"})
ELEMENTWISE_UNARY = frozenset(
    {
        "Relu",
        "Relu6",
        "Elu",
        "Selu",
        "LeakyRelu",
        "Tanh",
        "Sigmoid",
        "Softplus",
        "Softsign",
        "Neg",
        "Abs",
        "Sign",
        "Exp",
        "Log",
        "Sqrt",
        "Rsqrt",
        "Square",
        "Reciprocal",
        "Floor",
        "Ceil",
        "Round",
        "Erf",
        "Cast",
        "LogicalNot",
    }
)
"""Ops that compute each output element from the same input element alone: they commute with concatenation."""


class Rewriter:
    """What the rules share during one run: the graph, the context, static shapes, and the worklist."""

    def __init__(self, graph: Graph, ctx: PassContext) -> None:
        self.graph = graph
        self.ctx = ctx
        self.worklist: deque[str] = deque()
        self.queued: set[str] = set()
        self._inputs: dict[str, tuple[Tensor, ...]] = {}  # data inputs, while the graph is unchanged
        self._inputs_at = graph.mutations
        # What was read of constants' protos, each entry with the proto it came from, while no op or attr changes
        # in place (`Graph.retypes`): decoded values, and the constants this run made (see `new_const`).
        self._values: dict[Tensor, tuple[object, np.ndarray | None]] = {}
        self._made: dict[tuple[object, ...], tuple[str, object]] = {}
        self._retypes_at = graph.retypes

    @cached_property
    def shapes(self) -> StaticShapes:
        return StaticShapes.of(self.graph)

    def push(self, names: Sequence[str]) -> None:
        for name in names:
            if name in self.graph and name not in self.queued:
                self.queued.add(name)
                self.worklist.append(name)

    def readers(self, name: str) -> list[str]:
        return [use.node for _, use in self.graph.data_consumers(name)]

    def shape(self, tensor: Tensor) -> Shape | None:
        """The static shape of `tensor`: a Const's own, else inferred."""
        shape = const_shape(self.graph, tensor)
        return shape if shape is not None else self.shapes.shape(tensor)

    def inputs(self, name: str) -> tuple[Tensor, ...]:
        """`graph.inputs_of(name)`, read once while the graph is unchanged (rules look at the same nodes often)."""
        if self._inputs_at != self.graph.mutations:
            self._inputs.clear()
            self._inputs_at = self.graph.mutations
        found = self._inputs.get(name)
        if found is None:
            found = self._inputs[name] = tuple(self.graph.inputs_of(name))
        return found

    def _forget_if_retyped(self) -> None:
        """Forget what was read of constants' protos if an op or attr changed in place since."""
        if self._retypes_at != self.graph.retypes:
            self._values.clear()
            self._made.clear()
            self._retypes_at = self.graph.retypes

    def constant(self, tensor: Tensor) -> np.ndarray | None:
        """The numeric value of `tensor` when a Const produces it (decoded once while its node keeps its proto
        and no op or attr changes, see `Graph.retypes`: rules look at the same constants many times; callers
        must not modify it)."""
        self._forget_if_retyped()
        proto = self.graph.node(tensor.node).proto
        found = self._values.get(tensor)
        if found is None or found[0] is not proto:
            value = const_value(self.graph, tensor)
            if value is not None:
                value.setflags(write=False)
            found = self._values[tensor] = (
                proto,
                value if value is not None and value.dtype.kind in NUMERIC_KINDS else None,
            )
        return found[1]

    def fed(self, name: str) -> bool:
        """True for a graph input: its value is fed, so a rewrite must read it, never skip over it."""
        return self.graph.is_graph_input(name)

    def sole_reader(self, name: str) -> bool:
        """True when one data use reads `name`, nothing waits on it and it is not the interface: a rewrite that
        bypasses it may remove it."""
        graph = self.graph
        return (
            len(graph.data_consumers(name)) == 1 and not graph.control_consumers(name) and not graph.is_protected(name)
        )

    def replace(self, name: str, tensor: Tensor, control: Collection[str] = (), dropped: Sequence[str] = ()) -> bool:
        """Forward `name` to `tensor` (see `patterns.forward`), then remove what is left unused."""
        if not self.ctx.allow_rewrite():
            return False
        readers = self.readers(name)
        forward(self.graph, name, tensor, list(dict.fromkeys(control)))
        self.push([name, *readers, tensor.node])
        remove_dead(self.graph, [name, *dropped])
        return True

    def new_const(self, base: str, value: np.ndarray, replaced: Sequence[str], device: str) -> Tensor:
        """A Const holding `value`, with the control inputs of the constants it replaces: a new one, or one this run
        made before with the same value, device and control inputs, while it is unchanged (folding many equal
        chains gives one constant, not one a chain for `cse` to merge after)."""
        graph = self.graph
        control = tuple(dict.fromkeys(source for name in replaced for source in graph.control_inputs_of(name)))
        key = (device, control, value.dtype.str, value.shape, value.tobytes())
        self._forget_if_retyped()
        made = self._made.get(key)
        if made is not None and made[0] in graph and graph.node(made[0]).proto is made[1]:
            return Tensor(made[0])
        attrs = const_attrs(value)
        name = graph.add_node(base, "Const", control_inputs=list(control), attrs=attrs, device=device)
        self._made[key] = (name, graph.node(name).proto)
        return Tensor(name)


RuleFunction = Callable[[Rewriter, str], bool]


@dataclass(frozen=True)
class Rule:
    """One rewrite: the ops it matches, the function that checks and rewrites, and what it does."""

    ops: frozenset[str]
    apply: RuleFunction = field(repr=False)
    does: str


def _control_of(rw: Rewriter, names: Sequence[str]) -> list[str]:
    return [source for name in names for source in rw.graph.control_inputs_of(name)]


# ----- identity elements ----------------------------------------------------------------------------------------


def _neutral(rw: Rewriter, name: str, identity: int, operands: Sequence[int]) -> bool:
    """`x op c -> x` when the constant operand at one of `operands` is all `identity` and does not broadcast `x`."""
    inputs = rw.inputs(name)
    if len(inputs) != 2:
        return False
    for index in operands:
        constant, x = inputs[index], inputs[1 - index]
        value = rw.constant(constant)
        if value is None or (value.size and value.flat[0] != identity) or not np.all(value == identity):
            continue  # (the first element rules most constants out without a pass over all of them)
        if is_const(rw.graph, x.node):
            continue
        if not broadcast_keeps_shape(rw.shape(x), value.shape):
            continue
        return rw.replace(name, x, _control_of(rw, [constant.node]), [constant.node])
    return False


def times_one(rw: Rewriter, name: str) -> bool:
    return _neutral(rw, name, 1, (1, 0))


def plus_zero(rw: Rewriter, name: str) -> bool:
    return _neutral(rw, name, 0, (1, 0))


def minus_zero(rw: Rewriter, name: str) -> bool:
    return _neutral(rw, name, 0, (1,))


def divided_by_one(rw: Rewriter, name: str) -> bool:
    return _neutral(rw, name, 1, (1,))


def zero_bias(rw: Rewriter, name: str) -> bool:
    """`BiasAdd(x, 0) -> x` (a bias never changes the shape)."""
    x, bias = rw.graph.inputs_of(name)
    value = rw.constant(bias)
    if value is None or np.any(value) or is_const(rw.graph, x.node):
        return False
    return rw.replace(name, x, _control_of(rw, [bias.node]), [bias.node])


def involution(rw: Rewriter, name: str) -> bool:
    """`f(f(x)) -> x` for `f` its own inverse."""
    (inner,) = rw.graph.inputs_of(name)
    if rw.graph.op(inner.node) != rw.graph.op(name) or inner.port != 0 or rw.fed(inner.node):
        return False
    (x,) = rw.graph.inputs_of(inner.node)
    return rw.replace(name, x, rw.graph.control_inputs_of(inner.node), [inner.node])


# ----- constant chains ------------------------------------------------------------------------------------------


def _split_constant(rw: Rewriter, name: str) -> tuple[Tensor, int, np.ndarray, str] | None:
    """`(x, index of x, constant value, constant node)` of a binary node with exactly one Const operand."""
    inputs = rw.inputs(name)
    if len(inputs) != 2:
        return None
    for index in (0, 1):
        value = rw.constant(inputs[1 - index])
        if value is not None and not is_const(rw.graph, inputs[index].node):
            return inputs[index], index, value, inputs[1 - index].node
    return None


def _fold_chain(rw: Rewriter, name: str, inner: str, x: Tensor, value: np.ndarray, op: str, consts: list[str]) -> bool:
    """Make `name` compute `op(x, value)` (or `Sub(value, x)` when op is `Rsub`) and drop `inner`."""
    graph = rw.graph
    if not rw.ctx.allow_rewrite():
        return False
    base = f"{name}/perm" if op == "Transpose" else f"{name}/folded"
    constant = rw.new_const(base, value, consts, graph.node(name).device)
    graph.set_inputs(name, [constant, x] if op == "Rsub" else [x, constant])
    graph.set_op(name, "Sub" if op == "Rsub" else op)
    for source in graph.control_inputs_of(inner):
        graph.add_control_input(name, source)
    rw.push([name, *rw.readers(name)])
    remove_dead(graph, [inner, *consts])
    return True


def _chain_inner(rw: Rewriter, name: str, ops: Collection[str]) -> tuple[str, np.ndarray, str, Tensor, int] | None:
    """For `name = op2(inner, c2)`, with `inner = op1(x, c1)` read only here: `(inner, c2, c2 node, ...)`."""
    outer = _split_constant(rw, name)
    if outer is None:
        return None
    inner_tensor, index, _, _ = outer
    inner = inner_tensor.node
    if inner_tensor.port != 0 or rw.graph.op(inner) not in ops or not rw.sole_reader(inner):
        return None
    return inner, outer[2], outer[3], inner_tensor, index


def multiply_chain(rw: Rewriter, name: str) -> bool:
    """`(x*c1)*c2 -> x*(c1*c2)`."""
    found = _chain_inner(rw, name, {"Mul"})
    if found is None:
        return False
    inner, c2, c2_node, _, _ = found
    split = _split_constant(rw, inner)
    if split is None:
        return False
    x, _, c1, c1_node = split
    if c1.dtype != c2.dtype:
        return False
    with np.errstate(all="ignore"):
        product = np.asarray(np.multiply(c1, c2), dtype=c1.dtype)
    if product.size > max(c1.size, c2.size):
        return False
    return _fold_chain(rw, name, inner, x, product, "Mul", [c1_node, c2_node])


def _affine_sum(rw: Rewriter, name: str) -> tuple[Tensor, int, np.ndarray, str] | None:
    """`name` as `sign * x + k` with a constant `k`: `(x, sign, k, k node)`."""
    split = _split_constant(rw, name)
    if split is None:
        return None
    x, index, value, node = split
    if rw.graph.op(name) == "Sub":
        return (x, 1, -value, node) if index == 0 else (x, -1, value, node)
    return x, 1, value, node


def add_chain(rw: Rewriter, name: str) -> bool:
    """`(x+c1)+c2 -> x+(c1+c2)`, with `Sub` by or from a constant on either side."""
    found = _chain_inner(rw, name, {"Add", "AddV2", "Sub"})
    outer = _affine_sum(rw, name) if found is not None else None
    if found is None or outer is None:
        return False
    inner = found[0]
    inner_sum = _affine_sum(rw, inner)
    if inner_sum is None:
        return False
    x, inner_sign, k1, k1_node = inner_sum
    _, outer_sign, k2, k2_node = outer
    if k1.dtype != k2.dtype or k1.dtype.kind not in "ifc":
        return False  # unsigned negation and string concatenation are not this algebra
    with np.errstate(all="ignore"):
        total = np.asarray(outer_sign * k1 + k2, dtype=k1.dtype)
    if total.size > max(k1.size, k2.size):
        return False
    op = "AddV2" if outer_sign * inner_sign == 1 else "Rsub"
    return _fold_chain(rw, name, inner, x, total, op, [k1_node, k2_node])


# ----- layers ---------------------------------------------------------------------------------------------------


def scale_into_layer(rw: Rewriter, name: str) -> bool:
    """`conv(x, w) * s + b -> BiasAdd(conv(x, w * s), b)` and the like (see `fold-batch-norms`)."""
    readers = rw.readers(name)
    if not fold_into_layer(rw.graph, rw.ctx, name, ELEMENTWISE_STEP_OPS, evaluate=False):
        return False
    rw.push([name, *readers])
    for reader in readers:
        if reader in rw.graph:
            rw.push(rw.readers(reader))
    return True


# ----- shape ops ------------------------------------------------------------------------------------------------


def _same_shape(rw: Rewriter, result: Tensor, x: Tensor, requested: np.ndarray | None = None) -> bool:
    """True when `result` provably has `x`'s shape: both fully known and equal, or (a `Reshape` to `requested`)
    `x` has one unknown dimension where `requested` says -1 and the same sizes elsewhere."""
    before, after = rw.shape(x), rw.shape(result)
    if is_fully_defined(before) and is_fully_defined(after):
        return before == after
    if before is None or requested is None or requested.ndim != 1 or len(requested) != len(before):
        return False
    unknown = [axis for axis, size in enumerate(before) if size is None]
    if len(unknown) != 1 or requested[unknown[0]] != -1:
        return False
    return all(int(requested[axis]) == size for axis, size in enumerate(before) if axis != unknown[0])


def noop_reshape(rw: Rewriter, name: str) -> bool:
    """`Reshape`/`Squeeze`/`ExpandDims` (of a chain of them) back to the shape their input had -> that input."""
    graph = rw.graph
    inputs = graph.inputs_of(name)
    requested = rw.constant(inputs[1]) if graph.op(name) == "Reshape" and len(inputs) == 2 else None
    x, skipped = inputs[0], [name]
    while True:
        if _same_shape(rw, Tensor(name), x, requested if len(skipped) == 1 else None):
            inner = skipped[1:]
            return rw.replace(name, x, _control_of(rw, inner), [*inner, *(tensor.node for tensor in inputs[1:])])
        if graph.op(x.node) not in RESHAPES or x.port != 0 or not graph.inputs_of(x.node) or rw.fed(x.node):
            return False
        skipped.append(x.node)
        x = graph.inputs_of(x.node)[0]


def reshape_of_reshape(rw: Rewriter, name: str) -> bool:
    """`Reshape(Reshape/Squeeze/ExpandDims(x), s) -> Reshape(x, s)`."""
    graph = rw.graph
    inner = graph.inputs_of(name)[0]
    if graph.op(inner.node) not in RESHAPES or inner.port != 0 or rw.fed(inner.node) or not rw.ctx.allow_rewrite():
        return False
    graph.set_input(name, 0, graph.inputs_of(inner.node)[0])
    for source in graph.control_inputs_of(inner.node):
        graph.add_control_input(name, source)
    rw.push([name])
    remove_dead(graph, [inner.node])
    return True


def transpose_pair(rw: Rewriter, name: str) -> bool:
    """`Transpose(Transpose(x, p1), p2) -> Transpose(x, p1[p2])`, and `x` when that is the identity; `Transpose`
    by the identity permutation -> `x`."""
    graph = rw.graph
    x, perm_tensor = graph.inputs_of(name)
    outer = rw.constant(perm_tensor)
    if outer is None or outer.ndim != 1:
        return False
    if np.array_equal(outer, np.arange(outer.size)):
        return rw.replace(name, x, _control_of(rw, [perm_tensor.node]), [perm_tensor.node])
    if graph.op(x.node) != "Transpose" or x.port != 0 or rw.fed(x.node):
        return False
    inner_x, inner_perm_tensor = graph.inputs_of(x.node)
    inner = rw.constant(inner_perm_tensor)
    if inner is None or inner.shape != outer.shape:
        return False
    composed = inner[outer]
    if np.array_equal(composed, np.arange(composed.size)):
        control = _control_of(rw, [x.node, perm_tensor.node, inner_perm_tensor.node])
        return rw.replace(name, inner_x, control, [x.node, perm_tensor.node])
    if not rw.sole_reader(x.node):
        return False
    return _fold_chain(
        rw, name, x.node, inner_x, composed.astype(outer.dtype), "Transpose", [inner_perm_tensor.node, perm_tensor.node]
    )


def same_type_cast(rw: Rewriter, name: str) -> bool:
    """`Cast(x)` to the type `x` already has -> `x`."""
    attrs = rw.graph.node(name).attrs
    if "SrcT" not in attrs or "DstT" not in attrs or attrs["SrcT"].type != attrs["DstT"].type:
        return False
    return rw.replace(name, rw.graph.inputs_of(name)[0])


def _all_constant(rw: Rewriter, tensor: Tensor, accept: Callable[[np.ndarray], bool]) -> bool:
    value = rw.constant(tensor)
    return value is not None and accept(value)


def zero_pad(rw: Rewriter, name: str) -> bool:
    """`Pad`/`PadV2`/`MirrorPad` by all-zero paddings -> `x`."""
    inputs = rw.graph.inputs_of(name)
    if not _all_constant(rw, inputs[1], lambda value: not np.any(value)):
        return False
    return rw.replace(name, inputs[0], _control_of(rw, [inputs[1].node]), [tensor.node for tensor in inputs[1:]])


def whole_slice(rw: Rewriter, name: str) -> bool:
    """`Slice(x, 0, size)` with each size -1 or the whole (static) dimension -> `x`."""
    x, begin_tensor, size_tensor = rw.graph.inputs_of(name)
    begin, size, shape = rw.constant(begin_tensor), rw.constant(size_tensor), rw.shape(x)
    if begin is None or size is None or shape is None or begin.shape != (len(shape),) or size.shape != begin.shape:
        return False
    if np.any(begin != 0) or not all(int(want) in (-1, have) for want, have in zip(size, shape, strict=True)):
        return False
    return rw.replace(
        name, x, _control_of(rw, [begin_tensor.node, size_tensor.node]), [begin_tensor.node, size_tensor.node]
    )


def tile_by_one(rw: Rewriter, name: str) -> bool:
    """`Tile(x, [1, 1, ...]) -> x`."""
    x, multiples = rw.graph.inputs_of(name)
    if not _all_constant(rw, multiples, lambda value: bool(np.all(value == 1))):
        return False
    return rw.replace(name, x, _control_of(rw, [multiples.node]), [multiples.node])


def broadcast_to_own_shape(rw: Rewriter, name: str) -> bool:
    """`BroadcastTo(x, shape)` with `shape` the (static) shape `x` has -> `x`."""
    x, shape_tensor = rw.graph.inputs_of(name)
    target, shape = rw.constant(shape_tensor), rw.shape(x)
    if target is None or not is_fully_defined(shape) or tuple(int(size) for size in target.reshape(-1)) != shape:
        return False
    return rw.replace(name, x, _control_of(rw, [shape_tensor.node]), [shape_tensor.node])


def single_input(rw: Rewriter, name: str) -> bool:
    """`ConcatV2(x, axis)`, `Concat(axis, x)`, `AddN(x)` of one input -> `x`."""
    graph = rw.graph
    attrs = graph.node(name).attrs
    if "N" not in attrs or attrs["N"].i != 1:
        return False
    inputs = graph.inputs_of(name)
    op = graph.op(name)
    x, rest = (inputs[1], inputs[:1]) if op == "Concat" else (inputs[0], inputs[1:])
    return rw.replace(name, x, _control_of(rw, [tensor.node for tensor in rest]), [tensor.node for tensor in rest])


def _concat_parts(rw: Rewriter, name: str) -> tuple[list[Tensor], Tensor] | None:
    """The values and the axis of the `ConcatV2` `name`."""
    inputs = rw.graph.inputs_of(name)
    if len(inputs) < 2:
        return None
    return inputs[:-1], inputs[-1]


def hoist_unary_out_of_concat(rw: Rewriter, name: str) -> bool:
    """`ConcatV2(f(a), f(b), ..., axis) -> f(ConcatV2(a, b, ..., axis))` for an element-wise `f` with the same attrs
    on every part, each read only there: one `f` instead of N. `name` becomes the `f` (its value and name stay)."""
    graph = rw.graph
    parts = _concat_parts(rw, name)
    if parts is None:
        return False
    values, axis = parts
    producers = [value.node for value in values]
    op = graph.op(producers[0])
    if op not in ELEMENTWISE_UNARY or len(set(producers)) != len(producers):
        return False
    attrs = graph.node(producers[0]).attrs
    for producer, value in zip(producers, values, strict=True):
        if value.port != 0 or graph.op(producer) != op or rw.fed(producer) or not rw.sole_reader(producer):
            return False
        if graph.control_inputs_of(producer) or graph.node(producer).attrs != attrs:
            return False
    if not rw.ctx.allow_rewrite():
        return False
    node = graph.node(name)
    inner = graph.add_node_def(
        _copy_node(node, f"{name}/{op.lower()}_inputs"),
        [graph.inputs_of(producer)[0] for producer in producers] + [axis],
        graph.control_inputs_of(name),
    )
    if op == "Cast":
        graph.set_attr(inner, "T", attrs["SrcT"])  # the parts are concatenated before the cast
    graph.set_inputs(name, [Tensor(inner)])
    for key in list(node.attrs):
        graph.del_attr(name, key)
    graph.set_op(name, op)
    for key in attrs:
        graph.set_attr(name, key, attrs[key])
    rw.push([inner, name, *rw.readers(name)])
    remove_dead(graph, producers)
    return True


def _copy_node(node: Node, name: str) -> NodeDef:
    proto = NodeDef()
    proto.CopyFrom(node.proto)
    proto.name = name
    return proto


def flatten_concat(rw: Rewriter, name: str) -> bool:
    """`ConcatV2(a, ConcatV2(b, c, axis), d, axis) -> ConcatV2(a, b, c, d, axis)` (inner read only there)."""
    graph = rw.graph
    parts = _concat_parts(rw, name)
    if parts is None:
        return False
    values, axis = parts
    axis_value = rw.constant(axis)
    if axis_value is None:
        return False
    for index, value in enumerate(values):
        inner = value.node
        if graph.op(inner) != "ConcatV2" or value.port != 0 or rw.fed(inner) or not rw.sole_reader(inner):
            continue
        inner_values, inner_axis = _concat_parts(rw, inner) or ([], axis)
        inner_axis_value = rw.constant(inner_axis)
        if not inner_values or inner_axis_value is None or int(inner_axis_value) != int(axis_value):
            continue
        if graph.node(inner).attrs["T"] != graph.node(name).attrs["T"] or not rw.ctx.allow_rewrite():
            continue
        graph.set_inputs(name, [*values[:index], *inner_values, *values[index + 1 :], axis])
        count = AttrValue(i=len(values) + len(inner_values) - 1)
        graph.set_attr(name, "N", count)
        for source in graph.control_inputs_of(inner):
            graph.add_control_input(name, source)
        rw.push([name])
        remove_dead(graph, [inner])
        return True
    return False


def _rule(ops: Collection[str], apply: RuleFunction, does: str) -> Rule:
    return Rule(frozenset(ops), apply, does)


# fmt: off
RULES: tuple[Rule, ...] = (
    _rule({"Mul"}, times_one, "x*1 -> x, 1*x -> x (the ones do not broadcast x larger)"),
    _rule({"Add", "AddV2"}, plus_zero, "x+0 -> x, 0+x -> x (the zeros do not broadcast x larger)"),
    _rule({"Sub"}, minus_zero, "x-0 -> x (the zeros do not broadcast x larger)"),
    _rule({"Div", "RealDiv"}, divided_by_one, "x/1 -> x (the ones do not broadcast x larger)"),
    _rule({"BiasAdd"}, zero_bias, "BiasAdd(x, 0) -> x"),
    _rule(INVOLUTIONS, involution, "-(-x) -> x, !!x -> x, conj(conj(x)) -> x, ~~x -> x"),
    _rule({"Mul"}, multiply_chain, "(x*c1)*c2 -> x*(c1*c2)"),
    _rule({"Add", "AddV2", "Sub"}, add_chain, "(x+c1)+c2 -> x+(c1+c2), also with x-c, c-x"),
    _rule(LAYER_OPS, scale_into_layer, "conv(x, w)*s+b -> BiasAdd(conv(x, w*s), b), also for matmul"),
    _rule(RESHAPES, noop_reshape, "Reshape/Squeeze/ExpandDims back to the input's own shape -> x"),
    _rule({"Reshape"}, reshape_of_reshape, "Reshape(Reshape(x, s1), s2) -> Reshape(x, s2)"),
    _rule({"Transpose"}, transpose_pair, "Transpose(Transpose(x, p1), p2) -> Transpose(x, p1[p2]) or x"),
    _rule({"Cast"}, same_type_cast, "Cast(x: T) to T -> x"),
    _rule({"Pad", "PadV2", "MirrorPad"}, zero_pad, "Pad(x, zeros) -> x"),
    _rule({"Slice"}, whole_slice, "Slice(x, 0, whole) -> x"),
    _rule({"Tile"}, tile_by_one, "Tile(x, ones) -> x"),
    _rule({"BroadcastTo"}, broadcast_to_own_shape, "BroadcastTo(x, shape of x) -> x"),
    _rule({"ConcatV2", "Concat", "AddN"}, single_input, "Concat(x), AddN(x) of one input -> x"),
    _rule({"ConcatV2"}, hoist_unary_out_of_concat, "Concat(f(a), f(b), axis) -> f(Concat(a, b, axis)), f element-wise"),
    _rule({"ConcatV2"}, flatten_concat, "Concat(a, Concat(b, c, axis), axis) -> Concat(a, b, c, axis)"),
)
# fmt: on

RULES_BY_OP: dict[str, list[Rule]] = {}
for _entry in RULES:
    for _op in _entry.ops:
        RULES_BY_OP.setdefault(_op, []).append(_entry)


def simplify(graph: Graph, ctx: PassContext, rules: dict[str, list[Rule]] | None = None) -> int:
    """Run the rules from a worklist until none applies; return how many rewrites were made."""
    table = RULES_BY_OP if rules is None else rules
    rw = Rewriter(graph, ctx)
    rw.push([name for name in topological_order(graph) if graph.op(name) in table])
    rewrites = 0
    budget = 10 * len(graph) + 100  # every rule removes or shortens something; this only guards against a bug
    while rw.worklist and budget > 0:
        budget -= 1
        name = rw.worklist.popleft()
        rw.queued.discard(name)
        if name not in graph:
            continue
        for rule in table.get(graph.op(name), ()):
            if rule.apply(rw, name):
                rewrites += 1
                log.debug("arith: %s: %s", name, rule.does)
                break
    return rewrites


@dataclass(frozen=True)
class Arith(Pass):
    """Algebraic simplification; see the module docstring and `RULES`."""

    name = "arith"
    idempotent = True

    def run(self, graph: Graph, ctx: PassContext) -> None:
        rewrites = simplify(graph, ctx)
        if rewrites:
            ctx.logger.info("arith: %d rewrite(s)", rewrites)
