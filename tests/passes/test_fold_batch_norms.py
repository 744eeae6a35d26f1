"""`passes/fold_batch_norms.py`: each fold and each guard of its contract, on graphs TensorFlow runs, outputs compared
with `optimizer.verify` (random weights and random batch-norm statistics: zeros and ones would hide mistakes)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import optimizer
from optimizer import PassContext, PassManager, get_pass
from optimizer.layer_folding import channel_vector, match_layer
from optimizer.protos import GraphDef
from optimizer.tensor import to_numpy
from passes.fold_batch_norms import FoldBatchNorms
from tests.passes.runnable import build, check_outputs, constant, lift, ops, optimized, placeholder, tf

FOLD = "fold-batch-norms"
rng = np.random.default_rng(7)


def random(*shape: int) -> np.ndarray:
    return rng.normal(size=shape).astype(np.float32)


def statistics(channels: int) -> dict[str, np.ndarray]:
    """Random batch-norm parameters: scale, offset, mean and a positive variance."""
    return {
        "scale": rng.uniform(0.5, 1.5, channels).astype(np.float32),
        "offset": random(channels),
        "mean": random(channels),
        "variance": rng.uniform(0.2, 2.0, channels).astype(np.float32),
    }


def fused_batch_norm(value: Any, channels: int, op: str = "FusedBatchNormV3", **attrs: Any) -> Any:
    kernel = getattr(tf.raw_ops, op)
    return kernel(x=value, **statistics(channels), epsilon=1e-3, is_training=attrs.pop("is_training", False), **attrs)


def conv2d(value: Any, filters: np.ndarray, data_format: str = "NHWC") -> Any:
    return tf.raw_ops.Conv2D(
        input=value, filter=constant(filters), strides=[1, 1, 1, 1], padding="SAME", data_format=data_format
    )


def conv_bn(op: str = "FusedBatchNormV3", *, bias: bool = False) -> GraphDef:
    def body() -> None:
        image = conv2d(placeholder("x", [1, 5, 5, 3]), random(3, 3, 3, 4))
        if bias:
            image = tf.raw_ops.BiasAdd(value=image, bias=constant(random(4)))
        y = fused_batch_norm(image, 4, op)[0]
        tf.identity(y, name="y")

    return build(body)


def test_registered_under_its_name() -> None:
    assert get_pass(FOLD) is FoldBatchNorms
    assert str(FoldBatchNorms()) == FOLD


@pytest.mark.parametrize("op", ["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"])
@pytest.mark.parametrize("bias", [False, True], ids=["no-bias", "bias-add-between"])
def test_conv2d_fused_batch_norm_folds_into_weights_and_one_bias(op: str, bias: bool) -> None:
    graph_def = conv_bn(op, bias=bias)
    graph = optimized(graph_def, FOLD, inputs=["x"], outputs=["y"])
    counts = ops(graph)
    assert op not in counts and counts["BiasAdd"] == 1 and counts["Conv2D"] == 1
    assert counts["Const"] == 2  # the scaled weights and the one bias


def test_weights_are_scaled_in_place_and_the_formula_holds() -> None:
    weights, parameters = random(1, 1, 2, 3), statistics(3)

    def body() -> None:
        image = conv2d(placeholder("x", [1, 2, 2, 2]), weights)
        y = tf.raw_ops.FusedBatchNormV3(x=image, **parameters, epsilon=1e-3, is_training=False)[0]
        tf.identity(y, name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"])
    (conv,) = [node for node in graph.nodes() if node.op == "Conv2D"]
    weight = graph.inputs_of(conv.name)[1]
    (bias_add,) = [node for node in graph.nodes() if node.op == "BiasAdd"]
    factor = parameters["scale"] / np.sqrt(parameters["variance"].astype(np.float64) + np.float32(1e-3))
    folded = to_numpy(graph.node(weight.node).attrs["value"].tensor)
    np.testing.assert_allclose(folded, weights * factor, rtol=1e-6)
    bias = to_numpy(graph.node(graph.inputs_of(bias_add.name)[1].node).attrs["value"].tensor)
    np.testing.assert_allclose(bias, parameters["offset"] - parameters["mean"] * factor, rtol=1e-5, atol=1e-6)


def test_depthwise_multiplier_layout_scales_each_output_channel() -> None:
    def body() -> None:
        image = tf.raw_ops.DepthwiseConv2dNative(
            input=placeholder("x", [1, 5, 5, 3]),
            filter=constant(random(3, 3, 3, 2)),
            strides=[1, 1, 1, 1],
            padding="SAME",
        )
        tf.identity(fused_batch_norm(image, 6)[0], name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"])
    assert "FusedBatchNormV3" not in ops(graph) and ops(graph)["BiasAdd"] == 1


@pytest.mark.parametrize("data_format", ["NDHWC", "NCDHW"])
def test_conv3d_folds_in_both_data_formats(data_format: str) -> None:
    shape = [1, 4, 4, 4, 2] if data_format == "NDHWC" else [1, 2, 4, 4, 4]

    def body() -> None:
        volume = tf.raw_ops.Conv3D(
            input=placeholder("x", shape),
            filter=constant(random(2, 2, 2, 2, 3)),
            strides=[1, 1, 1, 1, 1],
            padding="SAME",
            data_format=data_format,
        )
        axis_shape = [3] if data_format == "NDHWC" else [3, 1, 1, 1]
        scaled = tf.raw_ops.Mul(x=volume, y=constant(rng.uniform(0.5, 2, axis_shape)))
        tf.raw_ops.AddV2(x=scaled, y=constant(random(*axis_shape)), name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"])
    assert graph.op("y") == "BiasAdd" and "Mul" not in ops(graph)
    assert graph.node("y").attrs["data_format"].s == (b"NHWC" if data_format == "NDHWC" else b"NCHW")


def test_nchw_conv2d_and_batch_norm_fold_with_a_channels_first_bias() -> None:
    def body() -> None:
        image = conv2d(placeholder("x", [1, 3, 5, 5]), random(3, 3, 3, 4), data_format="NCHW")
        tf.identity(fused_batch_norm(image, 4, data_format="NCHW")[0], name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"])
    (bias_add,) = [node for node in graph.nodes() if node.op == "BiasAdd"]
    assert bias_add.attrs["data_format"].s == b"NCHW"


def test_batch_norm_in_another_data_format_than_the_conv_is_not_folded() -> None:
    # A channels-last conv followed by a channels-first batch norm normalizes another axis: not a per-filter scale.
    weights = random(1, 1, 4, 4)

    def body() -> None:
        image = conv2d(placeholder("x", [1, 4, 4, 4]), weights)
        tf.identity(fused_batch_norm(image, 4, data_format="NCHW", name="bn")[0], name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"])
    assert graph.op("bn") == "AddV2" and "BiasAdd" not in ops(graph)  # decomposed, not folded
    (conv,) = [node.name for node in graph.nodes() if node.op == "Conv2D"]
    np.testing.assert_array_equal(to_numpy(graph.node(graph.inputs_of(conv)[1].node).attrs["value"].tensor), weights)


@pytest.mark.parametrize("transpose_b", [False, True])
def test_matmul_with_bias_and_decomposed_batch_norm(transpose_b: bool) -> None:
    def body() -> None:
        weights = random(4, 6) if transpose_b else random(6, 4)
        dense = tf.raw_ops.MatMul(a=placeholder("x", [3, 6]), b=constant(weights), transpose_b=transpose_b)
        dense = tf.raw_ops.BiasAdd(value=dense, bias=constant(random(4)))
        parameters = statistics(4)
        factor = tf.raw_ops.Mul(
            x=tf.raw_ops.Rsqrt(x=tf.raw_ops.AddV2(x=constant(parameters["variance"]), y=constant(1e-3))),
            y=constant(parameters["scale"]),
        )
        shift = tf.raw_ops.Sub(
            x=constant(parameters["offset"]), y=tf.raw_ops.Mul(x=constant(parameters["mean"]), y=factor)
        )
        tf.raw_ops.AddV2(x=tf.raw_ops.Mul(x=dense, y=factor), y=shift, name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"])
    assert ops(graph) == {"Placeholder": 1, "Const": 2, "MatMul": 1, "BiasAdd": 1}
    assert graph.op("y") == "BiasAdd"  # the graph output keeps its name


def keras_model_graph(*layers: Any, input_shape: tuple[int, ...]) -> GraphDef:
    """A frozen tiny Keras 3 model with every weight randomized, batch-norm statistics included."""
    keras = pytest.importorskip("keras")
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    model = keras.Sequential([keras.Input(input_shape), *layers])
    for variable in model.weights:
        positive = "variance" in variable.path or "gamma" in variable.path
        value = rng.uniform(0.5, 1.5, variable.shape) if positive else rng.normal(0, 0.5, variable.shape)
        variable.assign(value.astype(np.float32))
    function = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((1, *input_shape), name="x")
    )
    graph_def: GraphDef = convert_variables_to_constants_v2(function).graph.as_graph_def()
    return graph_def


def test_keras3_decomposed_batch_norms_fold_into_conv_depthwise_and_dense() -> None:
    keras = pytest.importorskip("keras")
    graph_def = keras_model_graph(
        keras.layers.Conv2D(4, 3, use_bias=False),
        keras.layers.BatchNormalization(),
        keras.layers.DepthwiseConv2D(3, depth_multiplier=2),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(6.0),
        keras.layers.Flatten(),
        keras.layers.Dense(5),
        keras.layers.BatchNormalization(),
        input_shape=(8, 8, 3),
    )
    outputs = [node.name for node in graph_def.node if node.name == "Identity"]
    before = ops(lift(graph_def, ["x"], outputs))
    assert before["Rsqrt"] == 3 and before["Sub"] == 3
    graph = optimized(graph_def, f"identity,{FOLD}", inputs=["x"], outputs=outputs)
    after = ops(graph)
    for op in ("Rsqrt", "Mul", "Sub", "AddV2", "Squeeze"):
        assert op not in after, after
    assert after["BiasAdd"] == 3


def test_a_weight_shared_with_another_conv_is_never_changed() -> None:
    weights = random(3, 3, 3, 4)

    def body() -> None:
        x = placeholder("x", [1, 5, 5, 3])
        shared = constant(weights, name="shared")
        first = tf.raw_ops.Conv2D(input=x, filter=shared, strides=[1, 1, 1, 1], padding="SAME")
        second = tf.raw_ops.Conv2D(input=x, filter=shared, strides=[1, 1, 1, 1], padding="SAME", name="other")
        tf.identity(fused_batch_norm(first, 4)[0], name="y")
        tf.identity(second, name="z")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y", "z"])
    np.testing.assert_array_equal(to_numpy(graph.node("shared").attrs["value"].tensor), weights)
    assert sorted(use.node for _, use in graph.data_consumers("shared")) == ["Conv2D", "other"]
    # Not folded, so written out as a per-channel Mul and Add of constants: no FusedBatchNorm stays.
    assert "FusedBatchNormV3" not in ops(graph) and ops(graph)["Mul"] == 1


def test_training_mode_batch_norm_is_neither_folded_nor_decomposed() -> None:
    def body() -> None:
        image = conv2d(placeholder("x", [2, 5, 5, 3]), random(3, 3, 3, 4))
        y = tf.raw_ops.FusedBatchNormV3(
            x=image,
            scale=constant(statistics(4)["scale"]),
            offset=constant(random(4)),
            mean=[],
            variance=[],
            is_training=True,
        )[0]
        tf.identity(y, name="y")

    graph_def = build(body)
    graph = lift(graph_def, ["x"], ["y"])
    report = PassManager(FOLD).run(graph)
    assert not report.changed and graph.to_graph_def() == graph_def


def test_a_batch_norm_whose_side_outputs_are_read_stays() -> None:
    def body() -> None:
        image = conv2d(placeholder("x", [1, 5, 5, 3]), random(3, 3, 3, 4))
        normalized = fused_batch_norm(image, 4)
        tf.identity(normalized[0], name="y")
        tf.identity(normalized[1], name="mean")

    graph_def = build(body)
    graph = lift(graph_def, ["x"], ["y", "mean"])
    assert not PassManager(FOLD).run(graph).changed


@pytest.mark.parametrize("scale_shape", [(4,), (1, 1, 1, 4), (1, 1, 4), ()], ids=str)
@pytest.mark.parametrize("add_op", ["Add", "AddV2"])
@pytest.mark.parametrize("const_first", [False, True], ids=["conv*s", "s*conv"])
def test_folded_form_x_times_scale_plus_offset(scale_shape: tuple[int, ...], add_op: str, const_first: bool) -> None:
    def body() -> None:
        image = conv2d(placeholder("x", [1, 5, 5, 3]), random(3, 3, 3, 4))
        scale = constant(rng.uniform(0.5, 2.0, scale_shape))
        scaled = tf.raw_ops.Mul(x=scale, y=image) if const_first else tf.raw_ops.Mul(x=image, y=scale)
        offset = constant(random(*scale_shape))
        add = getattr(tf.raw_ops, add_op)
        (add(x=offset, y=scaled, name="y") if const_first else add(x=scaled, y=offset, name="y"))

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"])
    assert ops(graph) == {"Placeholder": 1, "Const": 2, "Conv2D": 1, "BiasAdd": 1}


@pytest.mark.parametrize(
    "tail",
    [
        lambda v, c: tf.raw_ops.Sub(x=v, y=c),
        lambda v, c: tf.raw_ops.Sub(x=c, y=v),
        lambda v, c: tf.raw_ops.RealDiv(x=v, y=c),
        lambda v, c: tf.raw_ops.AddV2(x=tf.raw_ops.Mul(x=tf.raw_ops.Sub(x=c, y=v), y=c), y=c),
    ],
    ids=["v-c", "c-v", "v/c", "(c-v)*c+c"],
)
def test_other_affine_steps_fold(tail: Callable[[Any, Any], Any]) -> None:
    def body() -> None:
        image = conv2d(placeholder("x", [1, 5, 5, 3]), random(3, 3, 3, 4))
        tf.identity(tail(image, constant(rng.uniform(0.5, 2.0, 4))), name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"])
    assert {"Sub", "RealDiv", "Mul", "AddV2"}.isdisjoint(ops(graph))


def test_a_scale_that_broadcasts_over_space_is_not_folded() -> None:
    def body() -> None:
        image = conv2d(placeholder("x", [1, 5, 5, 3]), random(3, 3, 3, 4))
        tf.raw_ops.Mul(x=image, y=constant(random(5, 1, 1)), name="y")

    graph_def = build(body)
    graph = lift(graph_def, ["x"], ["y"])
    assert not PassManager(FOLD).run(graph).changed


def test_scale_only_forwards_the_tail_and_an_output_keeps_its_name() -> None:
    def body() -> None:
        image = conv2d(placeholder("x", [1, 5, 5, 3]), random(3, 3, 3, 4))
        tf.raw_ops.Mul(x=image, y=constant(rng.uniform(0.5, 2.0, 4)), name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"])
    assert graph.op("y") == "Identity"  # no bias needed, but `y` is the interface


def test_an_intermediate_graph_output_ends_the_tail() -> None:
    def body() -> None:
        image = conv2d(placeholder("x", [1, 5, 5, 3]), random(3, 3, 3, 4))
        biased = tf.raw_ops.BiasAdd(value=image, bias=constant(random(4)), name="mid")
        fused_batch_norm(biased, 4, name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["mid", "y:0"])
    assert graph.op("mid") == "BiasAdd" and graph.op("y") == "AddV2"  # y could not fold: decomposed


def test_unfoldable_inference_batch_norm_becomes_mul_and_add() -> None:
    def body() -> None:
        x = tf.raw_ops.Relu(features=placeholder("x", [2, 4, 4, 3]))
        fused_batch_norm(x, 3, name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y:0"])
    assert graph.op("y") == "AddV2" and ops(graph)["Mul"] == 1 and "FusedBatchNormV3" not in ops(graph)


def test_unfoldable_channels_first_batch_norm_is_decomposed_with_broadcast_shapes() -> None:
    def body() -> None:
        x = tf.raw_ops.Relu(features=placeholder("x", [2, 3, 4, 4]))
        fused_batch_norm(x, 3, name="y", data_format="NCHW")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y:0"])
    (multiply,) = [node.name for node in graph.nodes() if node.op == "Mul"]
    scale = graph.node(graph.inputs_of(multiply)[1].node)
    assert list(to_numpy(scale.attrs["value"].tensor).shape) == [3, 1, 1]


def test_half_precision_batch_norm_stays() -> None:
    def body() -> None:
        x = tf.raw_ops.Relu(features=placeholder("x", [1, 2, 2, 3], tf.float16))
        tf.raw_ops.FusedBatchNormV3(x=x, **statistics(3), is_training=False, name="y")

    graph_def = build(body)
    assert not PassManager(FOLD).run(lift(graph_def, ["x"], ["y:0"])).changed


def test_budget_bounds_the_rewrites() -> None:
    def body() -> None:
        x = placeholder("x", [1, 5, 5, 3])
        for _ in range(3):
            x = fused_batch_norm(conv2d(x, random(1, 1, 3, 3)), 3)[0]
        tf.identity(x, name="y")

    graph = optimized(build(body), FOLD, inputs=["x"], outputs=["y"], idempotent=False, max_rewrites=2)
    assert ops(graph)["FusedBatchNormV3"] == 1


def test_layer_matching_reasons() -> None:
    def body() -> None:
        x = placeholder("x", [1, 5, 5, 3])
        conv2d(x, random(1, 1, 3, 2))
        filters = placeholder("w", [1, 1, 3, 2])
        tf.raw_ops.Conv2D(input=x, filter=filters, strides=[1, 1, 1, 1], padding="SAME", name="dynamic")

    graph = lift(build(body), ["x", "w"], ["Conv2D", "dynamic"])
    assert "graph input or output" in str(match_layer(graph, "Conv2D"))
    graph.outputs = []
    assert "not a Const" in str(match_layer(graph, "dynamic"))
    layer = match_layer(graph, "Conv2D")
    assert not isinstance(layer, str) and (layer.channels, layer.channel_axis) == (2, 3)
    assert channel_vector(np.ones((1, 1, 1, 2)), layer) is not None
    assert channel_vector(np.ones((2, 1)), layer) is None
    assert channel_vector(np.ones((1, 1, 1, 1, 2)), layer) is None


def test_second_run_and_budget_zero_change_nothing() -> None:
    graph = lift(conv_bn(), ["x"], ["y"])
    assert not PassManager(FOLD, context=PassContext(max_rewrites=0)).run(graph).changed
    assert PassManager(FOLD).run(graph).changed
    assert not PassManager(FOLD).run(graph).changed


def test_the_default_pipeline_folds_each_batch_norm_before_merging_equal_weights() -> None:
    """Convolutions written with equal weights, each with its own batch norm: `cse` would merge the weights into
    one that three layers share, which this pass never changes, so it must run first (a corpus case caught it)."""
    filters = random(3, 3, 4, 4)

    def body() -> None:
        image = placeholder("x", [1, 5, 5, 4])
        for _ in range(3):
            image = tf.nn.relu(fused_batch_norm(conv2d(image, filters), 4)[0])
        tf.identity(image, name="y")

    original = build(body)
    graph = lift(original, ["x"], ["y"])
    optimizer.optimize(graph)
    assert ops(graph) == {"Placeholder": 1, "Const": 6, "Conv2D": 3, "BiasAdd": 3, "Relu": 3, "Identity": 1}
    check_outputs(original, graph)


def test_weights_whose_bytes_do_not_decode_leave_the_layer_alone() -> None:
    """A damaged kernel (3 bytes of content for 108 floats; `optimizer.load` refuses it, a caller of the pass on
    its own may not have) is neither folded into nor a crash: the batch norm is decomposed instead."""
    graph_def = conv_bn()
    kernel = next(
        node for node in graph_def.node if node.op == "Const" and len(node.attr["value"].tensor.tensor_shape.dim) == 4
    )
    kernel.attr["value"].tensor.tensor_content = b"\n\x51\x80"
    graph = optimizer.Graph.from_graph_def(graph_def, [optimizer.Tensor("x")], [optimizer.Tensor("y")])
    PassManager([FoldBatchNorms()]).run(graph)
    assert graph.node(kernel.name).attrs["value"].tensor.tensor_content == b"\n\x51\x80"  # left as it was
    assert ops(graph)["Mul"] == 1 and ops(graph)["AddV2"] == 1  # the batch norm is decomposed, not folded
