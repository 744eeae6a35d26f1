"""TFLite conversion, the interpreter run and its verification against TensorFlow; every model class the
fixtures build converts after the `tflite` target and computes what the original computes in TensorFlow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import optimizer
from fixtures.references import Reference
from optimizer._tf import tensorflow
from optimizer.function import as_function
from optimizer.ir import Graph, Tensor
from optimizer.session import open_session
from optimizer.tflite import (
    ConversionError,
    ConvertOptions,
    _interpreter,
    convert,
    operator_count,
    random_operators,
    run_tflite,
    verify_tflite,
)
from optimizer.tflite_baseline import convert_without_optimizing
from optimizer.verify import NOT_RUN, PASSED
from tests.fixture_models import Models
from tests.test_random_ops import dropout_model

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cnn() -> tuple[Graph, optimizer.protos.GraphDef]:
    graph = optimizer.load(ROOT / "fixtures" / "small_cnn.pb", outputs=["probabilities", "relu"])
    original = graph.to_graph_def()
    optimizer.optimize(graph)
    return graph, original


def test_converted_model_computes_what_the_original_computes(cnn: tuple[Graph, optimizer.protos.GraphDef]) -> None:
    graph, original = cnn
    model = convert(graph)
    assert model[4:8] == b"TFL3" and operator_count(model) >= 4
    result = verify_tflite(original, model, graph.inputs, graph.outputs, samples=3)
    assert result.passed and not result.skipped
    assert [check.name for check in result.outputs] == ["probabilities:0", "relu:0"]
    assert result.outputs[1].shape == [1, 16, 16, 8]


def test_float16_weights_halve_the_model_and_stay_close(cnn: tuple[Graph, optimizer.protos.GraphDef]) -> None:
    graph, original = cnn
    full, half = convert(graph), convert(graph, ConvertOptions(float16=True))
    assert len(half) < 0.75 * len(full)
    assert verify_tflite(original, half, graph.inputs, graph.outputs, rtol=1e-2, atol=1e-2).passed


def test_a_rejected_graph_raises_a_conversion_error() -> None:
    tf = tensorflow()
    built = tf.Graph()
    with built.as_default():
        text = tf.compat.v1.placeholder(tf.string, [2], name="text")
        tf.strings.to_hash_bucket_fast(text, 10, name="hashed")
    graph = Graph.from_graph_def(built.as_graph_def(), [Tensor("text")], [Tensor("hashed")])
    with pytest.raises(ConversionError, match="the TFLite converter rejected the graph"):
        convert(graph)
    assert convert(graph, ConvertOptions(select_tf_ops=True))[4:8] == b"TFL3"


# ----- every model class the fixtures build: the `tflite` target's graph converts and computes what TF does -----

TFLITE_TOLERANCE = {"rtol": 1e-4, "atol": 1e-5}


def _tflite_of(graph: Graph) -> tuple[bytes, Graph]:
    """Optimize a copy of `graph` for the `tflite` target and convert it; return the model and the optimized graph."""
    optimized = graph.copy()
    optimizer.optimize(optimized, target="tflite")
    return convert(optimized), optimized


def _assert_matches_tensorflow(
    original: Graph, model: bytes, feeds: list[dict[str, np.ndarray]] | None = None, samples: int = 2
) -> None:
    """The model's outputs equal the original's run in TensorFlow (its variables restored), on random inputs
    (`samples` sets) or on each of `feeds` (the rest of the inputs random)."""
    for given in feeds or [{}]:
        result = verify_tflite(
            original.to_graph_def(),
            model,
            original.inputs,
            original.outputs,
            variables=original.variables,
            feeds=given,
            samples=samples,
            **TFLITE_TOLERANCE,
        )
        assert result.passed and not result.skipped, (given, result.skipped, result.outputs)


def _assert_reproduces_reference(model: bytes, graph: Graph, reference: Reference) -> None:
    """The model's outputs on the fixture's stored cases equal what the original model computed when it was built."""
    for case in reference.cases:
        names = [str(tensor) for tensor in graph.outputs]
        if set(case.feeds) != {str(tensor) for tensor in graph.inputs} or not set(names) <= set(case.fetches):
            continue
        outputs = run_tflite(model, [case.feeds[str(tensor)] for tensor in graph.inputs])
        for name, got in zip(names, outputs, strict=True):
            np.testing.assert_allclose(got, case.fetches[name], rtol=1e-4, atol=1e-5, err_msg=f"{case.name}: {name}")


def _tf1(models: Models, name: str) -> tuple[Graph, Reference]:
    reference = models[name]
    strip = [name.removesuffix(":0") for name in reference.info["inputs"]]
    graph = optimizer.load(reference.path("meta_graph"), strip, reference.info["outputs"])
    return graph, reference


@pytest.mark.parametrize("name", ["bn_cond_v1", "bn_cond_v2"])
def test_a_tf1_training_graph_that_tensorflows_freezer_leaves_unconvertible_converts(
    tf1_models: Models, name: str
) -> None:
    """Batch-norm updates inside `tf.cond`s (v1 `Switch`/`Merge` with ref variables; v2 `If` capturing resource
    variables), Adam, a saver and summaries: frozen by TensorFlow's `convert_variables_to_constants`, the converter
    rejects the graph; after the `tflite` target it converts, in inference and training mode alike."""
    tf = tensorflow()
    graph, reference = _tf1(tf1_models, name)
    graph_def = graph.to_graph_def()
    with open_session(graph_def) as session:
        assert graph.variables is not None
        graph.variables.assign_all(session)
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(session, graph_def, ["probabilities"])
    rejection = {"bn_cond_v1": "incompatible with expected float_ref", "bn_cond_v2": "expected type resource != float"}
    with pytest.raises(Exception, match=rejection[name]):
        function = as_function(frozen, graph.inputs, graph.outputs)
        tf.lite.TFLiteConverter.from_concrete_functions([function], function).convert()

    model, optimized = _tflite_of(graph)
    assert model[4:8] == b"TFL3"
    assert not {node.op for node in optimized.nodes()} & {"VariableV2", "VarHandleOp", "Assign", "AssignSub"}
    training = [{"is_training:0": np.array(False)}, {"is_training:0": np.array(True)}]
    _assert_matches_tensorflow(graph, model, training)
    _assert_reproduces_reference(model, graph, reference)


def test_tensorflow_alone_is_compared_without_raising(tf1_models: Models) -> None:
    graph, _ = _tf1(tf1_models, "bn_cond_v2")
    baseline = convert_without_optimizing(graph_path(tf1_models, "bn_cond_v2"), graph)
    assert baseline.model is None and baseline.error and "resource" in baseline.error
    assert baseline.how.startswith("convert_variables_to_constants")
    assert baseline.to_dict()["bytes"] is None


def graph_path(models: Models, name: str) -> Path:
    return models[name].path("meta_graph")


@pytest.mark.parametrize("name", ["tf_keras_graph_mode", "rnn_v1"])
def test_tf1_graphs_with_a_learning_phase_or_a_v1_while_loop_convert(tf1_models: Models, name: str) -> None:
    graph, reference = _tf1(tf1_models, name)
    model, _ = _tflite_of(graph)
    _assert_matches_tensorflow(graph, model)
    _assert_reproduces_reference(model, graph, reference)


def test_a_tf1_saved_model_that_tensorflow_alone_rejects_converts(tf1_models: Models) -> None:
    reference = tf1_models["tf1_saved_model"]
    graph = optimizer.load(reference.path("saved_model"))
    baseline = convert_without_optimizing(reference.path("saved_model"), graph)
    assert baseline.model is None and "float_ref" in str(baseline.error)
    model, _ = _tflite_of(graph)
    _assert_matches_tensorflow(graph, model)
    _assert_reproduces_reference(model, graph, reference)


@pytest.mark.parametrize("name", ["keras3_saved_model", "tf_module_embedding"])
def test_tf2_saved_models_convert(keras_models: Models, name: str) -> None:
    """A Keras 3 model saved with `tf.saved_model.save`, and a `tf.Module` with a `ResourceGather` inside an `If`
    branch (kept functional: TFLite runs `If`)."""
    reference = keras_models[name]
    graph = optimizer.load(reference.path("saved_model"))
    model, optimized = _tflite_of(graph)
    _assert_matches_tensorflow(graph, model)
    _assert_reproduces_reference(model, graph, reference)
    if name == "tf_module_embedding":
        assert "If" in optimized.op_counts()


def test_a_keras_rnn_while_loop_converts_once_its_batch_is_fixed(keras_models: Models) -> None:
    """Keras 3 GRU: a `While` loop over a TensorList whose element shape leaves the batch open, which TFLite's
    builtins cannot lower; with the batch fixed to 1 (`--input-shape`) it converts, with no Flex op."""
    reference = keras_models["keras3_rnn"]
    (name,) = reference.info["inputs"]
    graph = optimizer.load(reference.path("saved_model"))
    optimized = graph.copy()
    optimizer.optimize(optimized, target="tflite")
    assert "While" in optimized.op_counts()
    with pytest.raises(ConversionError, match="--input-shape"):
        convert(optimized)
    fixed = optimizer.load(reference.path("saved_model"), input_shapes={name.removesuffix(":0"): [1, 6]})
    model, _ = _tflite_of(fixed)
    assert "WHILE" in {op["op_name"] for op in _interpreter(model)._get_ops_details()}
    _assert_matches_tensorflow(fixed, model, samples=3)


def test_a_keras3_application_converts(small_applications: Path) -> None:
    """MobileNetV2 (Keras 3, random weights): batch norms folded, no variable left, outputs as in TensorFlow."""
    graph = optimizer.load(small_applications / "keras3_MobileNetV2" / "saved_model")
    model, optimized = _tflite_of(graph)
    ops = optimized.op_counts()
    assert not {"Rsqrt", "FusedBatchNormV3", "ReadVariableOp", "VarHandleOp"} & set(ops)
    assert operator_count(model) < 80
    _assert_matches_tensorflow(graph, model, samples=1)


def test_a_tf_keras_application_in_graph_mode_with_its_learning_phase_converts(small_applications: Path) -> None:
    """MobileNetV2 (tf_keras, TF1 graph mode): its batch norms sit in `If`s on the Keras learning phase, which
    becomes `False`; the dead branches fold away and the batch norms into the convolutions."""
    folder = small_applications / "tf_keras_MobileNetV2"
    interface = json.loads((folder / "interface.json").read_text())
    graph = optimizer.load(folder / "model.meta", interface["inputs"], interface["outputs"])
    assert "PlaceholderWithDefault" in graph.op_counts()
    model, optimized = _tflite_of(graph)
    assert not {"If", "PlaceholderWithDefault", "FusedBatchNormV3"} & set(optimized.op_counts())
    _assert_matches_tensorflow(graph, model, samples=1)


def test_random_outputs_of_a_tflite_model_are_not_compared_and_the_deterministic_ones_are() -> None:
    graph = Graph.from_graph_def(dropout_model(), [Tensor("x")], [Tensor("noisy"), Tensor("clean")])
    original = graph.to_graph_def()
    optimizer.optimize(graph)
    model = convert(graph)
    assert random_operators(model) == ["RANDOM_UNIFORM"]
    result = verify_tflite(original, model, graph.inputs, graph.outputs, samples=2)
    assert result.status == PASSED and result.random_outputs == ["noisy:0"]
    assert [check.name for check in result.outputs] == ["clean:0"]
    alone = verify_tflite(original, model, graph.inputs, [Tensor("noisy")])
    assert alone.status == NOT_RUN and alone.skipped and "every output is random" in alone.skipped
