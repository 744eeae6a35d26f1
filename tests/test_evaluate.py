"""The constant-evaluation engine (`optimizer/evaluate.py`): one TensorFlow call per frontier, exact values,
every dtype, and nothing unsafe ever executed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimizer import Tensor
from optimizer import evaluate as evaluation
from optimizer.evaluate import NotFoldable, evaluate, frontier_graph_def, to_tensor_proto
from optimizer.tensor import from_numpy, to_numpy
from tests.passes.build import const, graph, node, placeholder

tf = pytest.importorskip("tensorflow")


def count_runs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count TensorFlow calls (sessions) made by the engine."""
    calls: list[int] = []
    real = evaluation.run_frontier

    def counting(graph_def: Any, fetches: Any, *rest: Any) -> Any:
        calls.append(len(fetches))
        return real(graph_def, fetches, *rest)

    monkeypatch.setattr(evaluation, "run_frontier", counting)
    return calls


def test_a_whole_frontier_is_one_tensorflow_call(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [const("a", [1.0, 2.0]), const("b", [3.0, 4.0])]
    for index in range(20):
        nodes.append(node(f"n{index}", "Minimum" if index % 2 else "Maximum", "a", "b"))
    g = graph(*nodes)
    calls = count_runs(monkeypatch)
    result = evaluate(g, [Tensor(f"n{index}") for index in range(20)])
    assert calls == [20] and result.calls == 1 and not result.failures
    assert np.array_equal(result.values[Tensor("n0")], [3.0, 4.0])
    assert np.array_equal(result.values[Tensor("n1")], [1.0, 2.0])


def test_exact_arithmetic_never_reaches_tensorflow_and_the_rest_does(monkeypatch: pytest.MonkeyPatch) -> None:
    g = graph(
        const("a", [1.0, 2.0]),
        const("b", [3.0, 4.0]),
        node("sum", "AddV2", "a", "b"),
        node("product", "Mul", "sum", "b"),
        node("top", "Maximum", "product", "a"),
        node("nan", "Sub", "inf", "inf"),
        const("inf", [np.inf]),
    )
    calls = count_runs(monkeypatch)
    result = evaluate(g, [Tensor("product"), Tensor("top"), Tensor("nan")])
    assert calls == [2], "Maximum is not exact here, and a NaN result is left to TensorFlow"
    assert np.array_equal(result.values[Tensor("product")], [12.0, 24.0])
    assert result.values[Tensor("product")].dtype == np.float32 and result.dtypes[Tensor("product")] == tf.float32
    assert np.array_equal(result.values[Tensor("top")], [12.0, 24.0]) and np.isnan(result.values[Tensor("nan")]).all()


def test_the_frontier_holds_only_what_the_fetches_read() -> None:
    g = graph(
        placeholder("x"),
        const("a", [1.0, 2.0], "^x"),
        const("unused", [5.0]),
        node("neg", "Neg", "a"),
        node("y", "AddV2", "x", "neg"),
    )
    frontier = frontier_graph_def(g, [Tensor("neg")])
    assert [(n.name, list(n.input)) for n in frontier.node] == [("a", []), ("neg", ["a:0"])]


@pytest.mark.parametrize(
    "dtype",
    [tf.float16, tf.bfloat16, tf.float32, tf.float64, tf.int8, tf.uint8, tf.int16, tf.int32, tf.int64, tf.uint64],
    ids=lambda dtype: dtype.name,
)
def test_numbers_of_every_dtype_come_back_exactly(dtype: Any) -> None:
    g = graph(
        const("a", [1.5, -2.0, 3.0] if dtype.is_floating else [1, 2, 3], dtype=dtype),
        node("sq", "Square", "a", T=dtype),
        node("cast", "Cast", "sq", T=None, SrcT=dtype, DstT=tf.float32),
    )
    result = evaluate(g, [Tensor("sq"), Tensor("cast")])
    value = result.values[Tensor("sq")]
    assert result.dtypes[Tensor("sq")] == dtype and value.dtype == dtype.as_numpy_dtype
    proto = result.proto(Tensor("sq"))
    assert proto.dtype == dtype.as_datatype_enum
    assert np.array_equal(to_numpy(proto), value)
    expected = np.square(np.array([1.5, -2.0, 3.0] if dtype.is_floating else [1, 2, 3], dtype=dtype.as_numpy_dtype))
    assert np.array_equal(value, expected)


def test_strings_bools_and_complex_numbers_come_back_exactly() -> None:
    g = graph(
        const("s", [b"ab", b"c"], dtype=tf.string),
        node("joined", "StringJoin", "s", "s", T=None, N=2, separator="-"),
        const("b", [True, False], dtype=tf.bool),
        node("not", "LogicalNot", "b", T=None),
        const("z", [1 + 2j, -1j], dtype=tf.complex64),
        node("conj", "Conj", "z", T=tf.complex64),
    )
    result = evaluate(g, [Tensor("joined"), Tensor("not"), Tensor("conj")])
    assert list(result.values[Tensor("joined")]) == [b"ab-ab", b"c-c"]
    assert result.values[Tensor("not")].tolist() == [False, True]
    assert result.values[Tensor("conj")].tolist() == [1 - 2j, 1j]
    for tensor in result.values:
        assert np.array_equal(to_numpy(result.proto(tensor)), result.values[tensor])


def test_known_values_stand_in_for_their_tensors() -> None:
    g = graph(
        placeholder("x", shape=(2, 3)),
        node("shape", "Shape", "x", out_type=tf.int32),
        node("n", "Prod", "shape", "axis", Tidx=tf.int32, T=tf.int32),
        const("axis", 0, dtype=tf.int32),
    )
    known = {Tensor("shape"): from_numpy(np.array([2, 3], dtype=np.int32))}
    result = evaluate(g, [Tensor("n"), Tensor("shape")], known)
    assert int(result.values[Tensor("n")]) == 6
    assert result.values[Tensor("shape")].tolist() == [2, 3] and result.calls == 1


@pytest.mark.parametrize(
    ("nodes", "fetch", "message"),
    [
        ([placeholder("x"), node("y", "Neg", "x")], "y", "graph input"),
        (
            [const("shape", [2], dtype=tf.int32), node("r", "RandomUniform", "shape", T=tf.int32, dtype=tf.float32)],
            "r",
            "random",
        ),
        ([const("v", 1.0), node("q", "FakeQuantWithMinMaxArgs", "v", T=None)], "q", "quantization"),
        ([const("v", 1.0), node("c", "CheckNumerics", "v", message="m")], "c", "stateful"),
    ],
)
def test_unsafe_frontiers_are_refused_before_anything_runs(
    nodes: list[Any], fetch: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_runs(monkeypatch)
    with pytest.raises(NotFoldable, match=message):
        evaluate(graph(*nodes, inputs=["x"] if fetch == "y" else []), [Tensor(fetch)])
    assert calls == []


def test_read_file_is_never_executed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOP-SECRET-BYTES")
    g = graph(const("path", str(secret).encode(), dtype=tf.string), node("read", "ReadFile", "path", T=None))
    calls = count_runs(monkeypatch)
    with pytest.raises(NotFoldable, match="ReadFile"):
        evaluate(g, [Tensor("read")])
    assert calls == []


def test_a_failing_fetch_costs_a_few_calls_and_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    nodes = [const("a", [1.0, 2.0]), const("text", [b"12", b"abc"], dtype=tf.string)]
    nodes += [node(f"n{index}", "Neg", "a") for index in range(7)]
    nodes.append(node("bad", "StringToNumber", "text", T=None, out_type=tf.float32))
    g = graph(*nodes)
    calls = count_runs(monkeypatch)
    fetches = [Tensor(f"n{index}") for index in range(7)] + [Tensor("bad")]
    result = evaluate(g, fetches)
    assert set(result.failures) == {Tensor("bad")} and "abc" in result.failures[Tensor("bad")]
    assert len(result.values) == 7 and len(calls) <= 7  # 1 + 2 per halving, not one call per fetch


def test_all_equal_values_are_stored_as_one() -> None:
    proto = to_tensor_proto(np.full((64, 64), 0.5, dtype=np.float32), tf.float32)
    assert len(proto.float_val) == 1 and not proto.tensor_content
    assert np.array_equal(to_numpy(proto), np.full((64, 64), 0.5, dtype=np.float32))
    # bitwise, not numeric, equality: -0.0 and 0.0 differ, NaNs with the same bits are equal
    mixed = to_tensor_proto(np.array([0.0, -0.0], dtype=np.float32), tf.float32)
    assert np.signbit(to_numpy(mixed)).tolist() == [False, True]
    nans = to_tensor_proto(np.full(3, np.nan, dtype=np.float32), tf.float32)
    assert np.isnan(to_numpy(nans)).all() and to_numpy(nans).shape == (3,)
    strings = to_tensor_proto(np.array([b"a", b"a"], dtype=object), tf.string)
    assert to_numpy(strings).tolist() == [b"a", b"a"]


def test_static_shapes_of_a_frontier_come_without_running_it(monkeypatch: pytest.MonkeyPatch) -> None:
    g = graph(
        const("dims", [1024, 1024, 256], dtype=tf.int32),
        const("one", 1.0),
        node("big", "Fill", "dims", "one", index_type=tf.int32),
        const("text", [b"1", b"x"], dtype=tf.string),
        node("bad", "StringToNumber", "text", T=None, out_type=tf.float32),
        const("values", [3.0, 3.0, 4.0]),
        node("unique", "Unique", "values", out_idx=tf.int32),
        node("wrong", "Unique", "one", out_idx=tf.int32),  # a scalar: its shape function rejects it
    )
    calls = count_runs(monkeypatch)
    fetches = [Tensor("big"), Tensor("bad"), Tensor("wrong"), Tensor("unique"), Tensor("unique", 1)]
    shapes = evaluation.frontier_shapes(g, fetches)
    assert calls == [] and Tensor("wrong") not in shapes
    assert shapes[Tensor("big")] == (tf.float32.as_datatype_enum, (1024, 1024, 256))
    assert shapes[Tensor("bad")] == (tf.float32.as_datatype_enum, (2,))
    assert shapes[Tensor("unique")][1] == (None,) and shapes[Tensor("unique", 1)][1] == (3,)


def test_values_past_the_result_budget_stay_in_the_child() -> None:
    """The child sends values in fetch order while they fit in `max_result_bytes`; the rest are failures."""
    g = graph(
        const("dims", [1000], dtype=tf.int32),
        const("one", 1.0),
        node("small", "Neg", "one"),
        node("big", "Fill", "dims", "one", index_type=tf.int32),
        node("bigger", "Fill", "dims", "small", index_type=tf.int32),
    )
    result = evaluate(g, [Tensor("small"), Tensor("big"), Tensor("bigger")], max_result_bytes=4100)
    assert np.array_equal(result.values[Tensor("small")], -1.0) and result.values[Tensor("big")].shape == (1000,)
    assert result.failures == {Tensor("bigger"): evaluation.OVER_BUDGET}


def test_a_child_failure_is_split_in_halves_unless_it_timed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash or an out-of-memory costs the fetches of the batch that holds the culprit, not all of them; a
    time-out is not retried (each retry could cost the whole limit again)."""
    from optimizer.sandbox import ChildFailure

    g = graph(const("a", [1.0, 2.0]), *(node(f"n{i}", "Maximum", "a", "a") for i in range(8)))
    real = evaluation.run_frontier
    batches: list[list[str]] = []

    def failing(cause: str) -> Any:
        def run(graph_def: Any, fetches: Any, *rest: Any) -> Any:
            batches.append([fetch.node for fetch in fetches])
            if Tensor("n5") in fetches:
                raise ChildFailure("fold", None, cause)
            return real(graph_def, fetches, *rest)

        return run

    monkeypatch.setattr(evaluation, "run_frontier", failing("crashed with SIGSEGV"))
    result = evaluate(g, [Tensor(f"n{i}") for i in range(8)])
    assert set(result.failures) == {Tensor("n5")} and len(result.values) == 7
    assert len(batches) == 7  # 8 -> 4+4 -> 2+2 -> 1+1, and the halves without n5 succeed

    batches.clear()
    monkeypatch.setattr(evaluation, "run_frontier", failing("took longer than the time limit of 1 s (--time-limit)"))
    result = evaluate(g, [Tensor(f"n{i}") for i in range(8)])
    assert len(result.failures) == 8 and not result.values and len(batches) == 1
