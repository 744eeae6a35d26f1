"""`optimizer/shapes.py`: static shapes from TensorFlow's inference, once per graph, and the library closure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from optimizer import Graph, Tensor
from optimizer.library import referenced_library
from optimizer.protos import AttrValue, DataType, FunctionDef, FunctionDefLibrary
from optimizer.shapes import VALUE_LIMIT, StaticShapes, broadcast_keeps_shape, is_fully_defined
from tests.passes.build import const, graph, node, placeholder
from tests.passes.runnable import build, lift, tf


def test_shapes_and_dtypes_of_every_output() -> None:
    def body() -> None:
        x = tf.compat.v1.placeholder(tf.float32, [None, 4], name="x")
        tf.reshape(x, [-1, 2, 2], name="r")
        tf.raw_ops.Split(axis=1, value=x, num_split=2, name="s")
        tf.cast(x, tf.int32, name="c")

    g = lift(build(body), ["x"], ["r", "s", "c"])
    shapes = StaticShapes.infer(g)
    assert shapes.shape(Tensor("x")) == (None, 4)
    assert shapes.shape(Tensor("r")) == (None, 2, 2)
    assert shapes.shape(Tensor("s", 1)) == (None, 2)
    assert shapes.shape(Tensor("s", 2)) is None  # no such output
    assert shapes.dtype(Tensor("c")) == DataType.Value("DT_INT32")


def test_input_shapes_make_a_dynamic_input_static() -> None:
    def body() -> None:
        tf.identity(tf.compat.v1.placeholder(tf.float32, [None, 4], name="x"), name="y")

    g = lift(build(body), ["x"], ["y"])
    assert StaticShapes.infer(g, {"x": (3, 4)}).shape(Tensor("y")) == (3, 4)
    assert StaticShapes.infer(g).shape(Tensor("y")) == (None, 4)


def test_large_constants_keep_their_shape_without_being_copied() -> None:
    big = np.zeros(VALUE_LIMIT + 1, np.float32)
    g = graph(const("big", big), node("y", "Neg", "big"), outputs=["y"])
    shapes = StaticShapes.infer(g)
    assert shapes.shape(Tensor("y")) == (VALUE_LIMIT + 1,)
    assert g.op("big") == "Const"  # the graph itself is untouched


def test_unknown_rank_and_unimportable_graphs_are_unknown() -> None:
    g = graph(placeholder("x", shape=None), node("y", "Neg", "x"), inputs=["x"], outputs=["y"])
    assert StaticShapes.infer(g).shape(Tensor("y")) is None
    broken = graph(placeholder("x"), node("y", "NoSuchOp", "x"), inputs=["x"], outputs=["y"])
    shapes = StaticShapes.infer(broken)
    assert shapes.shape(Tensor("x")) is None and shapes.dtype(Tensor("x")) is None


def test_a_node_added_after_inference_or_replaced_under_the_same_name_is_unknown() -> None:
    g = graph(placeholder("x"), node("y", "Neg", "x"), inputs=["x"], outputs=[])
    shapes = StaticShapes.infer(g)
    assert shapes.shape(Tensor("y")) == (2,)
    g.remove("y")
    g.add_node("y", "Tanh", [Tensor("x")])
    assert shapes.shape(Tensor("y")) is None
    g.set_op("x", "Placeholder")  # rewritten in place: still answers
    assert shapes.shape(Tensor("x")) == (2,)


def test_of_infers_once_while_the_graph_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    g = graph(placeholder("x"), node("y", "Neg", "x"), inputs=["x"], outputs=["y"])
    calls: list[int] = []
    infer = StaticShapes.infer.__func__  # type: ignore[attr-defined]

    def counting(cls: type[StaticShapes], g: Graph) -> StaticShapes:
        calls.append(g.mutations)
        return infer(cls, g)

    monkeypatch.setattr(StaticShapes, "infer", classmethod(counting))
    first = StaticShapes.of(g)
    assert StaticShapes.of(g) is first and calls == [0]
    g.add_node("z", "Tanh", [Tensor("y")], attrs={"T": AttrValue(type=DataType.Value("DT_FLOAT"))})
    assert StaticShapes.of(g).shape(Tensor("z")) == (2,) and calls == [0, 1]  # changed: inferred again
    copy = g.copy()
    assert StaticShapes.of(copy).shape(Tensor("z")) == (2,) and len(calls) == 3  # a copy has its own memo
    g.restore(copy)
    StaticShapes.of(g)
    assert len(calls) == 4  # a rollback counts as a change


@pytest.mark.parametrize(
    ("x", "c", "keeps"),
    [
        ((2, 3), (), True),
        ((2, 3), (3,), True),
        ((2, 3), (1, 3), True),
        ((2, 3), (2, 1), True),
        ((2, 3), (1, 2, 3), False),
        ((2, 3), (2,), False),
        ((None, 3), (1, 3), True),
        ((None, 3), (2, 3), False),  # the dynamic 2 may be 1 at run time
        (None, (1,), False),
        (None, (), True),
    ],
)
def test_broadcast_keeps_shape(x: tuple[int | None, ...] | None, c: tuple[int, ...], keeps: bool) -> None:
    assert broadcast_keeps_shape(x, c) is keeps


def test_is_fully_defined() -> None:
    assert is_fully_defined((1, 2)) and is_fully_defined(())
    assert not is_fully_defined((None, 2)) and not is_fully_defined(None)


def test_referenced_library_is_the_transitive_closure_with_gradients() -> None:
    library = FunctionDefLibrary()
    for name, calls in (("outer", "inner"), ("inner", None), ("inner_grad", None), ("unused", None)):
        function = FunctionDef()
        function.signature.name = name
        if calls:
            function.node_def.add(name="call", op=calls)
        library.function.append(function)
    library.gradient.add(function_name="inner", gradient_func="inner_grad")
    g = graph(placeholder("x"), node("y", "outer", "x", T=None), inputs=["x"], outputs=["y"])
    closure = referenced_library([g.node("y").proto], library)
    assert sorted(function.signature.name for function in closure.function) == ["inner", "inner_grad", "outer"]
    assert [gradient.function_name for gradient in closure.gradient] == ["inner"]


def test_ops_of_unbounded_output_are_opaque_to_inference(monkeypatch: pytest.MonkeyPatch) -> None:
    """A `ParseTensor` of a small string claiming 3.6 GB, summed over all its axes: TensorFlow's shape inference
    would run it to learn the axes (`Range(Rank(x))`). It is imported as a placeholder instead, so nothing is
    allocated, and its shape stays unknown."""
    from optimizer import shapes as shapes_module
    from optimizer.protos import TensorProto

    claim = TensorProto(dtype=1)
    for size in (30_000, 30_000):
        claim.tensor_shape.dim.add(size=size)
    g = graph(
        const("serialized", claim.SerializeToString(), dtype=tf.string),
        node("parsed", "ParseTensor", "serialized", T=None, out_type=tf.float32),
        node("rank", "Rank", "parsed"),
        const("zero", 0, dtype=tf.int32),
        const("one", 1, dtype=tf.int32),
        node("axes", "Range", "zero", "rank", "one", Tidx=tf.int32),
        node("sum", "Sum", "parsed", "axes", Tidx=tf.int32),
        outputs=["sum"],
    )
    imported = []
    real = shapes_module.LazyImport

    def recording(graph_def: Any) -> Any:
        imported.append({item.name: item.op for item in graph_def.node})
        return real(graph_def)

    monkeypatch.setattr(shapes_module, "LazyImport", recording)
    static = StaticShapes.infer(g)
    assert imported[0]["parsed"] == "Placeholder" and static.shape(Tensor("parsed")) is None
    assert static.dtype(Tensor("parsed")) == tf.float32.as_datatype_enum
