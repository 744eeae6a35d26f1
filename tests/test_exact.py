"""Exact numpy evaluation against TensorFlow's own kernels: bit for bit, or left to TensorFlow."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from optimizer import Tensor
from optimizer.evaluate import frontier_graph_def, run_frontier
from optimizer.exact import EXACT_LIMIT, NUMPY_FUNCTIONS, exact_values
from tests.passes.build import const, graph, node, placeholder

tf = pytest.importorskip("tensorflow")

DTYPES = [np.float32, np.float64, np.int32, np.int64]
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 1e-310, 3.4e38, -3.4e38, 1.0, 0.1]


@st.composite
def cases(draw: st.DrawFn) -> tuple[str, np.ndarray, np.ndarray]:
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    ops = ["Add", "AddV2", "Sub", "Mul", "Neg"] + (["RealDiv"] if dtype.kind == "f" else [])
    op = draw(st.sampled_from(ops))
    size = draw(st.integers(1, 6))
    if dtype.kind == "f":
        elements = st.one_of(st.sampled_from(SPECIAL), st.floats(width=32 if dtype == np.float32 else 64))
    else:
        elements = st.integers(int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))  # type: ignore[type-var]
    left = draw(hnp.arrays(dtype, (size,), elements=elements))
    right_shape = draw(st.sampled_from([(size,), (), (1,)]))
    right = draw(hnp.arrays(dtype, right_shape, elements=elements))
    return op, left, right


def _irregular(array: np.ndarray) -> bool:
    """A NaN or a subnormal."""
    if array.dtype.kind != "f":
        return False
    magnitude = np.abs(array)
    return bool(np.isnan(array).any() or ((magnitude > 0) & (magnitude < np.finfo(array.dtype).tiny)).any())


def _tensorflow(g: object, fetch: Tensor) -> np.ndarray:
    values, _ = run_frontier(frontier_graph_def(g, [fetch]), [fetch])  # type: ignore[arg-type]
    (value,) = values
    assert value is not None
    return value


@given(cases())
def test_an_exact_value_is_bit_for_bit_tensorflows(case: tuple[str, np.ndarray, np.ndarray]) -> None:
    op, left, right = case
    operands = ("a",) if op == "Neg" else ("a", "b")
    g = graph(
        const("a", left, dtype=tf.as_dtype(left.dtype)),
        const("b", right, dtype=tf.as_dtype(right.dtype)),
        node("r", op, *operands, T=tf.as_dtype(left.dtype)),
    )
    exact = exact_values(g, [Tensor("r")])
    if Tensor("r") not in exact:  # left to TensorFlow: only for a NaN or a subnormal in or out
        with np.errstate(all="ignore"):
            result = NUMPY_FUNCTIONS[op](left) if op == "Neg" else NUMPY_FUNCTIONS[op](left, right)
        assert any(_irregular(array) for array in (left, right, result)), (op, left, right)
        event("left to TensorFlow")
        return
    event("computed exactly")
    expected = _tensorflow(g, Tensor("r"))
    value = exact[Tensor("r")]
    assert value.dtype == expected.dtype and value.shape == expected.shape
    assert value.tobytes() == expected.tobytes(), (op, left, right, value, expected)


def test_nan_subnormal_fed_and_other_ops_are_left_to_tensorflow() -> None:
    g = graph(
        placeholder("x"),
        const("one", [1.0, 1.0]),
        const("tiny", [1e-40, 1.0]),
        const("nan", [np.nan, 1.0]),
        node("fed", "AddV2", "x", "one"),
        node("subnormal", "AddV2", "tiny", "one"),
        node("not_a_number", "Mul", "nan", "one"),
        node("flushed", "Mul", "one", "one"),
        node("exp", "Exp", "one"),
        node("ok", "Sub", "flushed", "one"),
        inputs=["x"],
    )
    fetches = [Tensor(name) for name in ("fed", "subnormal", "not_a_number", "exp", "ok")]
    assert list(exact_values(g, fetches)) == [Tensor("ok")]
    assert np.array_equal(exact_values(g, [Tensor("ok")])[Tensor("ok")], [0.0, 0.0])


def test_a_result_over_the_limit_is_left_to_tensorflow() -> None:
    side = int(np.sqrt(EXACT_LIMIT)) + 1
    g = graph(
        const("column", np.ones((side, 1))),
        const("row", np.ones((1, side))),
        node("outer", "Mul", "column", "row"),
        node("small", "Mul", "column", "column"),
    )
    assert list(exact_values(g, [Tensor("outer"), Tensor("small")])) == [Tensor("small")]


def test_a_chain_of_a_hundred_thousand_nodes_does_not_recurse() -> None:
    nodes = [const("c", [1.0]), const("zero", [0.0])]
    previous = "c"
    for index in range(100_000):
        nodes.append(node(f"n{index}", "AddV2", previous, "zero"))
        previous = f"n{index}"
    value = exact_values(graph(*nodes), [Tensor(previous)])[Tensor(previous)]
    assert value.tolist() == [1.0]
