"""`optimizer/loading.py` through `optimizer.load`: the kind of model told from the path, options that apply."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import optimizer
from optimizer import OptimizerError
from optimizer.loading import model_bytes, model_kind
from tests.fixture_models import Models

ROOT = Path(__file__).resolve().parent.parent
CNN = ROOT / "fixtures" / "small_cnn.pb"


def test_kinds(tf1_models: Models, keras_models: Models) -> None:
    assert model_kind(keras_models["keras3_rnn"].path("saved_model")) == "saved_model"
    assert model_kind(tf1_models["bn_cond_v1"].path("meta_graph")) == "meta_graph"
    assert model_kind(CNN) == "graph_def"


def test_a_plain_graph_def_has_no_values_and_a_meta_graph_has(tf1_models: Models) -> None:
    assert optimizer.load(CNN).variables is None
    graph = optimizer.load(tf1_models["bn_cond_v1"].path("meta_graph"), outputs=["probabilities"])
    assert graph.variables is not None and "bn0/moving_mean" in graph.variables
    assert graph.copy().variables is graph.variables  # copies share the values


def test_given_names_override_the_signature(keras_models: Models) -> None:
    folder = keras_models["keras3_export"].path("saved_model")
    graph = optimizer.load(folder, outputs=["StatefulPartitionedCall"])
    assert [str(tensor) for tensor in graph.outputs] == ["StatefulPartitionedCall:0"]
    assert [str(tensor) for tensor in graph.inputs] == ["serving_default_features:0"]


@pytest.mark.parametrize(
    "keywords, message",
    [
        ({"signature": "serving_default"}, "--signature and --tag apply only to SavedModel folders"),
        ({"tag": "serve"}, "--signature and --tag apply only to SavedModel folders"),
    ],
)
def test_options_that_do_not_apply_are_errors(keywords: dict[str, str], message: str) -> None:
    with pytest.raises(OptimizerError, match=message):
        optimizer.load(CNN, **keywords)


def test_a_saved_model_takes_no_checkpoint(keras_models: Models, tf1_models: Models) -> None:
    with pytest.raises(OptimizerError, match="a SavedModel brings its own variables"):
        optimizer.load(keras_models["keras3_rnn"].path("saved_model"), checkpoint=tf1_models["bn_cond_v1"].folder)


def test_model_bytes_counts_every_file_of_a_saved_model(keras_models: Models) -> None:
    folder = keras_models["keras3_rnn"].path("saved_model")
    files = [Path(root) / name for root, _, names in os.walk(folder) for name in names]
    assert (
        model_bytes(folder) == sum(path.stat().st_size for path in files) > (folder / "saved_model.pb").stat().st_size
    )
    assert model_bytes(CNN) == CNN.stat().st_size
