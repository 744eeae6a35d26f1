"""`optimizer/checkpoint.py`: finding a checkpoint, matching its keys to the graph's variables, reading lazily."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from optimizer import Graph, OptimizerError
from optimizer._tf import tensorflow
from optimizer.checkpoint import checkpoint_values, latest_checkpoint, optimizer_slots, resolve_prefix, saver_keys
from optimizer.meta_graph import read_meta_graph
from optimizer.protos import GraphDef
from tests.fixture_models import Models

tf = tensorflow()
v1 = tf.compat.v1


def save_checkpoint(
    folder: Path,
    values: dict[str, np.ndarray],
    *,
    resource: bool = False,
    keys: dict[str, str] | None = None,
    saved: list[str] | None = None,
) -> tuple[GraphDef, str]:
    """A graph holding variables named as `values` and a checkpoint of the ones in `saved` (all by default),
    saved under `keys` (default: their names)."""
    graph = tf.Graph()
    with graph.as_default():
        made = {name: v1.Variable(value, name=name, use_resource=resource) for name, value in values.items()}
        chosen = {(keys or {}).get(name, name): made[name] for name in (saved or list(values))}
        saver = v1.train.Saver(var_list=chosen)
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            prefix = saver.save(session, str(folder / "model.ckpt"))
    return graph.as_graph_def(), str(prefix)


VALUES: dict[str, np.ndarray] = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([1, 2], np.int64)}


def test_resolve_prefix_accepts_the_prefix_its_files_and_its_folder(tmp_path: Path) -> None:
    _, prefix = save_checkpoint(tmp_path, VALUES)
    data = next(tmp_path.glob("model.ckpt.data-*"))
    for given in (prefix, prefix + ".index", str(data), str(tmp_path)):
        assert resolve_prefix(given) == prefix
    assert latest_checkpoint(str(tmp_path)) == prefix


def test_a_missing_checkpoint_is_one_line_naming_it(tmp_path: Path) -> None:
    with pytest.raises(OptimizerError, match=r"model\.ckpt-9: no checkpoint here: model\.ckpt-9\.index does not exist"):
        resolve_prefix(tmp_path / "model.ckpt-9")
    with pytest.raises(OptimizerError, match="no checkpoint in this folder"):
        resolve_prefix(tmp_path)


def test_latest_checkpoint_without_a_state_file_takes_the_only_index(tmp_path: Path) -> None:
    _, prefix = save_checkpoint(tmp_path, VALUES)
    (tmp_path / "checkpoint").unlink()
    assert latest_checkpoint(str(tmp_path)) == prefix
    shutil.copy(prefix + ".index", tmp_path / "other.index")
    assert latest_checkpoint(str(tmp_path)) is None  # two candidates: none is "the" latest


@pytest.mark.parametrize("resource", [False, True])
def test_a_saver_in_the_graph_says_which_key_holds_which_variable(tmp_path: Path, resource: bool) -> None:
    graph_def, prefix = save_checkpoint(tmp_path, VALUES, resource=resource, keys={"w": "layer/weights"})
    graph = Graph.from_graph_def(graph_def)
    assert saver_keys(graph) == {"w": "layer/weights", "b": "b"}
    values = checkpoint_values(graph, prefix)
    assert values.key("w") == "layer/weights" and values.spec("w").shape == (2, 3)
    np.testing.assert_array_equal(values.read("w"), VALUES["w"])
    assert values.read("b").dtype == np.int64


def test_values_are_read_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    graph_def, prefix = save_checkpoint(tmp_path, VALUES)
    calls: list[str] = []
    original = tf.train.load_checkpoint

    def counting(path: str) -> object:
        reader = original(path)

        class Counting:
            def __getattr__(self, name: str) -> object:
                return getattr(reader, name)

            def get_tensor(self, key: str) -> object:
                calls.append(key)
                return reader.get_tensor(key)

        return Counting()

    monkeypatch.setattr(tf.train, "load_checkpoint", counting)
    values = checkpoint_values(Graph.from_graph_def(graph_def), prefix)
    assert calls == []
    values.read("b")
    assert calls == ["b"]


def test_a_variable_missing_from_the_checkpoint_is_recorded_not_fatal(tmp_path: Path) -> None:
    graph_def, prefix = save_checkpoint(tmp_path, VALUES, saved=["w"])
    values = checkpoint_values(Graph.from_graph_def(graph_def), prefix)
    assert "w" in values and "b" not in values
    assert values.missing["b"].startswith("variable 'b' is not in the checkpoint")


def test_a_shape_that_differs_is_an_error_naming_both(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _, prefix = save_checkpoint(tmp_path / "a", {"w": np.zeros((3, 3), np.float32)})
    graph_def, _ = save_checkpoint(tmp_path, VALUES)
    message = r"variable 'w' has shape \[2, 3\] in the graph but \[3, 3\] in the checkpoint \(w\)"
    with pytest.raises(OptimizerError, match=message) as caught:
        checkpoint_values(Graph.from_graph_def(graph_def), prefix)
    assert str(caught.value).startswith(prefix + ": ")


def test_a_dtype_that_differs_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _, prefix = save_checkpoint(tmp_path / "a", {"w": np.zeros((2, 3), np.float64)})
    graph_def, _ = save_checkpoint(tmp_path, VALUES)
    with pytest.raises(OptimizerError, match="variable 'w' is float32 in the graph but float64 in the checkpoint"):
        checkpoint_values(Graph.from_graph_def(graph_def), prefix)


def test_a_checkpoint_of_another_model_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    _, prefix = save_checkpoint(tmp_path / "a", {"other": np.zeros(2, np.float32)})
    graph_def, _ = save_checkpoint(tmp_path, VALUES)
    with pytest.raises(OptimizerError, match="none of the graph's 2 variables is in the checkpoint"):
        checkpoint_values(Graph.from_graph_def(graph_def), prefix)


def test_a_corrupt_checkpoint_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "bad.index").write_bytes(b"not a checkpoint index")
    with pytest.raises(OptimizerError, match="not a readable checkpoint") as caught:
        checkpoint_values(Graph.from_graph_def(GraphDef()), str(tmp_path / "bad"))
    assert "\n" not in str(caught.value)


def test_the_values_know_the_whole_checkpoint_and_which_keys_are_optimizer_slots(tf1_models: Models) -> None:
    model = tf1_models["bn_cond_v1"]
    graph = Graph.from_graph_def(read_meta_graph(model.path("meta_graph")))
    values = checkpoint_values(graph, str(model.path("checkpoint")))
    assert len(values.stored) == 23 and "global_step" in values.stored
    trainable = ["dense/kernel", "dense/bias", "bn0/gamma", "bn0/beta", "classifier/kernel", "classifier/bias"]
    adam = {f"{name}/Adam{suffix}" for name in trainable for suffix in ("", "_1")}
    assert optimizer_slots(graph) == adam | {"beta1_power", "beta2_power"}
    assert values.slots == adam | {"beta1_power", "beta2_power"}
