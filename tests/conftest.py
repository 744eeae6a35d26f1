"""Shared test set-up: the outside corpus location, hypothesis profiles, the fixture models (built once)."""

from __future__ import annotations

import os
from pathlib import Path

# TensorFlow enables its oneDNN CPU kernels by default only on some processors (AVX-512 and newer); without them
# the CPU has no NCHW Conv2D / NCDHW Conv3D and Grappler's remapper fuses nothing. Tests run the same everywhere.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

import pytest
from hypothesis import HealthCheck, settings

from tests.fixture_models import Models, build_models

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "tf2onnx-cases"

settings.register_profile(
    "ci", max_examples=200, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def tf1_models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """The TF1 graph-mode models of `fixtures/tf1_models.py` (training graphs with checkpoints, tf_keras)."""
    return Models(build_models("tf1", tmp_path_factory.mktemp("models")))


@pytest.fixture(scope="session")
def small_applications(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`fixtures/keras_applications.py --small`: MobileNetV2 (alpha 0.35, 96x96, random weights) as a Keras 3
    SavedModel (`keras3_MobileNetV2/saved_model`) and as a tf_keras TF1 meta graph with its learning phase
    (`tf_keras_MobileNetV2/model.meta`, `interface.json`)."""
    return build_models("applications", tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def keras_models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """The TF2 SavedModels of `fixtures/keras_models.py` (Keras 3, a tf.Module)."""
    return Models(build_models("keras", tmp_path_factory.mktemp("models")))
