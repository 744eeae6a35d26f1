"""`optimizer/patterns.py`: constant values, the small numpy evaluator, forwarding, dead-node removal, order."""

from __future__ import annotations

import numpy as np
import pytest

from optimizer import GraphError, Tensor
from optimizer.patterns import (
    const_shape,
    const_value,
    evaluate_constant,
    forward,
    in_topological_order,
    output_dtype,
    remove_dead,
    topological_order,
)
from optimizer.protos import DataType
from tests.passes.build import const, graph, lowered, node, placeholder
from tests.passes.runnable import build, lift, tf


def test_const_value_and_shape_of_consts_only() -> None:
    g = graph(const("c", [[1.0, 2.0]]), placeholder("x"), node("y", "Neg", "x"), inputs=["x"], outputs=["y"])
    np.testing.assert_array_equal(const_value(g, Tensor("c")), [[1.0, 2.0]])
    assert const_shape(g, Tensor("c")) == (1, 2)
    assert const_value(g, Tensor("y")) is None and const_shape(g, Tensor("x")) is None
    g.inputs = [Tensor("c")]  # a fed constant has no constant value
    assert const_value(g, Tensor("c")) is None


def test_evaluator_computes_a_keras_batch_norm_scale_as_tensorflow_does() -> None:
    variance, gamma = np.array([0.5, 2.0], np.float32), np.array([1.5, -0.5], np.float32)

    def body() -> None:
        with tf.control_dependencies([tf.raw_ops.NoOp(name="gate")]):
            eps = tf.constant(1e-3, name="eps")
        factor = tf.raw_ops.Mul(x=tf.raw_ops.Rsqrt(x=tf.raw_ops.AddV2(x=tf.constant(variance), y=eps)), y=gamma)
        tf.raw_ops.Squeeze(input=tf.reshape(factor, [1, 2]), name="y")

    graph_def = build(body)
    g = lift(graph_def, [], ["y"])
    found = evaluate_constant(g, Tensor("y"))
    assert found is not None and found.value.dtype == np.float32
    with tf.compat.v1.Session(graph=tf.Graph()) as session:
        tf.graph_util.import_graph_def(graph_def, name="")
        expected = session.run("y:0")
    np.testing.assert_allclose(found.value, expected, rtol=1e-6)
    assert "eps" in found.nodes and found.control_inputs == ("gate",)


def test_evaluator_refuses_what_it_does_not_know() -> None:
    g = graph(
        placeholder("x"),
        const("c", [1.0, 2.0]),
        const("i", [1, 2], dtype=tf.int32),
        node("a", "AddV2", "x", "c"),
        node("e", "Exp", "c"),
        node("n", "Neg", "i", T=tf.int32),
        inputs=["x"],
        outputs=[],
    )
    for name in ("a", "e", "n", "i"):
        assert evaluate_constant(g, Tensor(name)) is None, name


def test_output_dtype_reads_the_signature() -> None:
    g = graph(placeholder("x"), node("c", "Cast", "x", T=None, SrcT=tf.float32, DstT=tf.int64), inputs=["x"])
    dtype = output_dtype(g, "c")
    assert dtype is not None and dtype.type == DataType.Value("DT_INT64")


def test_forward_rewires_or_keeps_the_name_as_an_identity() -> None:
    g = graph(
        placeholder("x"),
        node("plain", "Neg", "x"),
        node("kept", "Neg", "x"),
        node("gated", "Neg", "x", "^plain"),
        node("a", "Tanh", "plain"),
        node("b", "Tanh", "gated"),
        inputs=["x"],
        outputs=["kept", "a", "b"],
    )
    forward(g, "plain", Tensor("x"))  # has a control consumer: becomes Identity
    forward(g, "kept", Tensor("x"))  # a graph output: becomes Identity
    forward(g, "gated", Tensor("x"))  # has a control input: becomes Identity
    names = lowered(g)
    assert names["plain"] == ("Identity", ["x"]) and names["kept"] == ("Identity", ["x"])
    assert names["gated"] == ("Identity", ["x", "^plain"])
    h = graph(placeholder("x"), node("n", "Neg", "x"), node("y", "Tanh", "n"), inputs=["x"], outputs=["y"])
    forward(h, "n", Tensor("x"), ["x"])  # control to carry: Identity
    assert lowered(h)["n"] == ("Identity", ["x", "^x"])
    h = graph(placeholder("x"), node("n", "Neg", "x"), node("y", "Tanh", "n"), inputs=["x"], outputs=["y"])
    forward(h, "n", Tensor("x"))
    assert lowered(h)["y"] == ("Tanh", ["x"]) and not h.is_used("n")


def test_remove_dead_follows_producers_and_spares_what_must_stay() -> None:
    g = graph(
        placeholder("x"),
        placeholder("unused"),
        const("c", 1.0),
        node("r", "RandomUniform", "c", T=tf.float32, dtype=tf.float32),
        node("m", "Mul", "x", "c"),
        node("t", "Tanh", "m"),
        node("u", "AddV2", "r", "unused"),
        node("y", "Neg", "x"),
        inputs=["x"],
        outputs=["y"],
    )
    assert remove_dead(g, ["t", "u"]) == 3  # t, m, u; c stays for r; r is stateful, `unused` a placeholder
    assert sorted(g) == ["c", "r", "unused", "x", "y"]
    with pytest.raises(GraphError):
        g.remove("x")
    assert remove_dead(g, ["y", "x"]) == 0


def test_topological_order_puts_inputs_first_and_ignores_loop_back_edges() -> None:
    g = graph(
        node("y", "Tanh", "m"),
        node("m", "Merge", "enter", "next", N=2),
        node("next", "NextIteration", "y"),
        node("enter", "Enter", "x", frame_name="f"),
        placeholder("x"),
        inputs=["x"],
        outputs=["y"],
    )
    order = topological_order(g)
    assert order.index("x") < order.index("enter") < order.index("m") < order.index("y") < order.index("next")
    assert sorted(order) == sorted(g)


def test_topological_order_keeps_graph_order_when_it_is_one_and_breaks_ties_by_it() -> None:
    in_order = graph(placeholder("x"), node("b", "Neg", "x"), node("a", "Neg", "x"), node("y", "AddV2", "a", "b"))
    assert topological_order(in_order) == ["x", "b", "a", "y"]
    shuffled = graph(node("y", "AddV2", "a", "b"), node("b", "Neg", "x"), node("a", "Neg", "x"), placeholder("x"))
    assert topological_order(shuffled) == ["x", "b", "a", "y"]


def test_in_topological_order_tells_a_graph_whose_order_puts_inputs_first() -> None:
    in_order = graph(placeholder("x"), node("a", "Neg", "x"), node("y", "AddV2", "a", "x"))
    assert in_topological_order(in_order, in_order, set())
    shuffled = graph(placeholder("x"), node("y", "AddV2", "a", "x"), node("a", "Neg", "x"))
    assert not in_topological_order(shuffled, shuffled, set())
    loop = graph(
        placeholder("x"),
        node("enter", "Enter", "x", frame_name="f"),
        node("m", "Merge", "enter", "next", N=2),
        node("next", "NextIteration", "m"),
    )
    assert not in_topological_order(loop, loop, set()) and in_topological_order(loop, loop, {"next"})
