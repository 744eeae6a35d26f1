"""Bit-exact constant evaluation with numpy, for the element-wise ops whose results do not depend on the kernel.

Contract
- `exact_values(graph, fetches, known)` gives the value of each fetch that a subgraph of `EXACT_OPS` computes
  from `Const` nodes and `known` values, bit for bit what TensorFlow's CPU kernels compute: `+`, `-`, `*`, `/` and
  negation are correctly rounded under IEEE-754 (float32, float64) or wrap in two's complement (int32, int64), in
  numpy as in Eigen, with the same broadcasting. Fetches it cannot vouch for are left out, for TensorFlow to
  compute: another op or dtype, a graph input (fed), a result over `EXACT_LIMIT` elements, and any input or
  result holding a NaN (TensorFlow does not promise NaN payloads) or a subnormal (TensorFlow's CPU threads flush
  those to zero). A value over `EXACT_LIMIT` elements is not even decoded.
- It never mutates the graph; `tests/test_exact.py` checks it against TensorFlow on generated values.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import numpy as np

from optimizer.ir import Graph, Tensor
from optimizer.protos import TensorProto
from optimizer.tensor import NUMERIC_DTYPES, element_count, to_numpy

EXACT_LIMIT = 1 << 16
"""Most elements of an input or result computed here."""

NUMPY_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {  # on floats; integers take all but RealDiv
    "Add": np.add,
    "AddV2": np.add,
    "Sub": np.subtract,
    "Mul": np.multiply,
    "RealDiv": np.divide,
    "Neg": np.negative,
}
_INT_OPS = {op: function for op, function in NUMPY_FUNCTIONS.items() if op != "RealDiv"}
EXACT_OPS = frozenset(NUMPY_FUNCTIONS)
_DTYPES = NUMERIC_DTYPES
_ARITY = {"Neg": 1}


def _vouched(value: np.ndarray) -> bool:
    """No NaN and no subnormal (integers always pass)."""
    if value.dtype.kind != "f":
        return True
    magnitude = np.abs(value)
    tiny = np.finfo(value.dtype).tiny
    return not (np.isnan(value).any() or ((magnitude < tiny) & (magnitude > 0)).any())


def _const(graph: Graph, name: str) -> np.ndarray | None:
    proto: TensorProto = graph.node(name).attrs["value"].tensor
    if proto.dtype not in _DTYPES or element_count(proto) > EXACT_LIMIT:
        return None
    value = to_numpy(proto)
    return value if _vouched(value) else None


def exact_values(
    graph: Graph, fetches: Iterable[Tensor], known: Mapping[Tensor, TensorProto] | None = None
) -> dict[Tensor, np.ndarray]:
    """The fetches computed exactly with numpy (see the module docstring); the others are absent."""
    known = known or {}
    memo: dict[Tensor, np.ndarray | None] = {}
    found: dict[Tensor, np.ndarray] = {}
    for fetch in fetches:
        stack = [fetch]
        while stack:  # depth-first, iterative: a chain of a million nodes must not recurse
            tensor = stack[-1]
            if tensor in memo:
                stack.pop()
                continue
            inputs = _operands(graph, tensor, known, memo)
            if inputs is None:
                stack.pop()
                continue
            waiting = [operand for operand in inputs if operand not in memo]
            if waiting:
                stack.extend(waiting)
                continue
            stack.pop()
            memo[tensor] = _apply(graph, tensor.node, [memo[operand] for operand in inputs])
        value = memo.get(fetch)
        if value is not None:
            found[fetch] = value
    return found


def _operands(
    graph: Graph, tensor: Tensor, known: Mapping[Tensor, TensorProto], memo: dict[Tensor, np.ndarray | None]
) -> list[Tensor] | None:
    """The tensors `tensor` is computed from; None when its value is settled here (a leaf, or refused)."""
    if tensor in known:
        value = to_numpy(known[tensor]) if known[tensor].dtype in _DTYPES else None
        memo[tensor] = value if value is not None and value.size <= EXACT_LIMIT and _vouched(value) else None
        return None
    name = tensor.node
    if name not in graph or tensor.port != 0 or graph.is_graph_input(name):
        memo[tensor] = None
        return None
    op = graph.op(name)
    if op == "Const":
        memo[tensor] = _const(graph, name) if "value" in graph.node(name).attrs else None
        return None
    inputs = graph.inputs_of(name)
    if op not in EXACT_OPS or len(inputs) != _ARITY.get(op, 2):
        memo[tensor] = None
        return None
    return inputs


def _apply(graph: Graph, name: str, operands: list[np.ndarray | None]) -> np.ndarray | None:
    node = graph.node(name)
    dtype = _DTYPES.get(node.attrs["T"].type) if "T" in node.attrs else None
    if dtype is None or any(operand is None or operand.dtype != dtype for operand in operands):
        return None
    arrays = [operand for operand in operands if operand is not None]
    try:
        shape = np.broadcast_shapes(*(array.shape for array in arrays))
    except ValueError:  # TensorFlow rejects these shapes too, and says why
        return None
    if int(np.prod(shape, dtype=np.int64)) > EXACT_LIMIT:
        return None
    function = (NUMPY_FUNCTIONS if dtype.kind == "f" else _INT_OPS).get(node.op)
    if function is None:
        return None
    with np.errstate(all="ignore"):
        result = np.asarray(function(*arrays))
    return result if result.dtype == dtype and _vouched(result) else None
