"""Lookup tables (`optimizer/tables.py`, `optimizer/initializers.py`): SavedModels whose signatures look up a
vocabulary are written as `.pb`s that fill their tables themselves, from `init_all_tables`, and compute what the
SavedModel computes, with the vocabulary file gone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from optimizer._tf import tensorflow
from optimizer.cli import main
from optimizer.graph_io import read_graph_def
from optimizer.session import run_graph
from tests.table_models import BUILDERS


class Built:
    """A SavedModel with tables, the feeds to compare it on, and what `tf.saved_model.load` computes from them."""

    def __init__(self, folder: Path, feeds: dict[str, np.ndarray]) -> None:
        self.folder, self.feeds = folder, feeds
        tf = tensorflow()
        function = tf.saved_model.load(str(folder)).signatures["serving_default"]
        results = function(**{key: tf.constant(value) for key, value in feeds.items()})
        self.expected = [np.asarray(results[key]) for key in sorted(results)]

    def hide_vocabularies(self) -> None:
        """Move every vocabulary file away (the SavedModel's assets, the file its builder read)."""
        for path in [*self.folder.parent.glob("vocab_*"), self.folder / "assets"]:
            if path.exists():
                path.rename(path.with_name(path.name + ".hidden"))

    def restore_vocabularies(self) -> None:
        for path in [*self.folder.parent.glob("vocab_*.hidden"), self.folder / "assets.hidden"]:
            path.rename(path.with_name(path.name.removesuffix(".hidden")))


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Built:
    root = tmp_path_factory.mktemp(request.param)
    folder = root / "saved_model"
    return Built(folder, BUILDERS[request.param](folder))


def run_pb(path: Path, report: dict[str, Any], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Run the written `.pb` in a fresh `tf.compat.v1.Session` (TensorFlow's defaults) as a user would: the
    reported initializers first."""
    tf = tensorflow()
    by_key = [feeds[key] for key in sorted(feeds)]  # the signature's inputs, in key order (as the report lists)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(read_graph_def(path), name="")
    with tf.compat.v1.Session(graph=graph) as session:
        session.run(report["initializers"])
        return list(session.run(report["outputs"], dict(zip(report["inputs"], by_key, strict=True))))


@pytest.mark.parametrize("passes", [None, ""], ids=["default", "no-passes"])
def test_written_pb_fills_its_tables_without_the_vocabulary_file(
    built: Built, passes: str | None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report_path = tmp_path / "out.pb", tmp_path / "report.json"
    args = [str(built.folder), "-o", str(out), "--report-json", str(report_path)]
    assert main([*args, *([] if passes is None else ["--passes", passes])]) == 0
    report = json.loads(report_path.read_text())
    assert report["verification"]["status"] == "passed"
    assert report["initializers"] == ["init_all_tables"]
    assert "initializers: init_all_tables" in capsys.readouterr().out
    graph_def = read_graph_def(out)
    ops = {node.op for node in graph_def.node}
    assert "LookupTableImportV2" in ops and "InitializeTableFromTextFileV2" not in ops
    if passes is None:  # --compare runs each model with its own initializer too
        assert main(["--compare", str(built.folder), str(out), "--report-json", str(report_path)]) == 0
        assert json.loads(report_path.read_text())["status"] == "passed"
    built.hide_vocabularies()
    try:
        actual = run_pb(out, report, built.feeds)
    finally:
        built.restore_vocabularies()
    assert len(actual) == len(built.expected)
    for got, want in zip(actual, built.expected, strict=True):
        np.testing.assert_array_equal(got, want)


def invoke_twice(model: bytes, feeds: list[np.ndarray]) -> list[list[np.ndarray]]:
    """The outputs of two invocations of one TFLite interpreter on `feeds` (the graph's input order)."""
    interpreter = tensorflow().lite.Interpreter(model_content=model)
    inputs = interpreter.get_input_details()
    for detail, value in zip(inputs, feeds, strict=True):
        interpreter.resize_tensor_input(detail["index"], list(value.shape))
    interpreter.allocate_tensors()
    runs = []
    for _ in range(2):
        for detail, value in zip(inputs, feeds, strict=True):
            interpreter.set_tensor(detail["index"], value)
        interpreter.invoke()
        runs.append([np.array(interpreter.get_tensor(detail["index"])) for detail in interpreter.get_output_details()])
    return runs


@pytest.mark.parametrize("name", ["text_file_module", "string_lookup", "feature_columns_tf1"])
def test_tflite_model_fills_its_hashtables(name: str, tmp_path: Path) -> None:
    folder = tmp_path / name / "saved_model"
    built = Built(folder, BUILDERS[name](folder))
    out, report_path = tmp_path / "out.tflite", tmp_path / "report.json"
    assert main([str(folder), "-o", str(out), "--report-json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["verification"]["status"] == "passed" and report["initializers"] == []
    built.hide_vocabularies()
    feeds = [built.feeds[key] for key in sorted(built.feeds)]
    for actual in invoke_twice(out.read_bytes(), feeds):  # the second run fills the filled tables harmlessly
        for got, want in zip(actual, built.expected, strict=True):
            np.testing.assert_array_equal(got, want)


def text_file_graph(folder: Path) -> Path:
    """A TF1 GraphDef: int64 keys in column 1 of a tab-separated file -> the words in column 0, first 2 lines only,
    filled by `tables_initializer` (`init_all_tables`); the file's path is written in the graph."""
    tf = tensorflow()
    vocab = folder / "vocab.tsv"
    vocab.write_text("a\t10\nb\t20\nc\t30\n")
    graph = tf.Graph()
    with graph.as_default():
        keys = tf.compat.v1.placeholder(tf.int64, [None], name="keys")
        initializer = tf.lookup.TextFileInitializer(str(vocab), tf.int64, 1, tf.string, 0, vocab_size=2, delimiter="\t")
        table = tf.lookup.StaticHashTable(initializer, "none")
        tf.identity(table.lookup(keys), name="words")
        tf.compat.v1.tables_initializer()
    path = folder / "model.pb"
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path


def test_text_file_columns_delimiter_and_size_are_embedded_as_tensorflow_reads_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = text_file_graph(tmp_path)
    out, report_path = tmp_path / "out.pb", tmp_path / "report.json"
    assert main([str(model), "-o", str(out), "--report-json", str(report_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["verification"]["status"] == "passed" and report["initializers"] == ["init_all_tables"]
    (tmp_path / "vocab.tsv").unlink()
    ops = {node.op for node in read_graph_def(out).node}
    assert "InitializeTableFromTextFileV2" not in ops and "LookupTableImportV2" in ops
    (words,) = run_pb(out, report, {"keys": np.array([20, 10, 30], dtype=np.int64)})
    assert words.tolist() == [b"b", b"a", b"none"]  # line 3 is past vocab_size
    again = tmp_path / "again.pb"
    assert main([str(out), "-o", str(again), "--report-json", str(report_path), "--passes", ""]) == 0
    assert json.loads(report_path.read_text())["initializers"] == ["init_all_tables"]
    assert len(read_graph_def(again).node) == len(read_graph_def(out).node)  # already self-contained
    capsys.readouterr()
    assert main([str(model), "-o", str(tmp_path / "x.pb")]) == 2  # the vocabulary is gone: one line, exit 2
    error = capsys.readouterr().err.strip()
    assert "the model's initializer fails" in error and "\n" not in error


def test_verification_runs_each_graph_with_its_own_initializer(built: Built) -> None:
    from optimizer.api import load, optimize
    from optimizer.verify import FAILED, PASSED, verify

    graph = load(built.folder)
    original = graph.copy()
    optimize(graph)
    assert graph.init is not None and graph.init.nodes == ("init_all_tables",)
    before, after = original.to_graph_def(), graph.to_graph_def()
    filled = verify(before, after, graph.inputs, graph.outputs, init=original.init, candidate_init=graph.init)
    assert filled.status == PASSED
    feeds = {str(tensor): built.feeds[key] for tensor, key in zip(graph.inputs, sorted(built.feeds), strict=True)}
    actual = run_graph(after, feeds, [str(tensor) for tensor in graph.outputs], graph.init)
    for got, want in zip(actual, built.expected, strict=True):
        np.testing.assert_array_equal(got, want)
    unfilled = verify(before, after, graph.inputs, graph.outputs, init=original.init)
    assert unfilled.status == FAILED and "fails to run" in unfilled.outputs[0].note


def test_random_strings_drawn_from_the_keys_catch_a_wrong_table(tmp_path: Path) -> None:
    from optimizer.api import load, optimize
    from optimizer.ir import Tensor
    from optimizer.patterns import const_value
    from optimizer.tables import table_words
    from optimizer.tensor import const_attrs
    from optimizer.verify import FAILED, PASSED, verify

    folder = tmp_path / "saved_model"
    BUILDERS["text_file_module"](folder)
    graph = load(folder)
    original = graph.copy()
    optimize(graph, "")
    assert sorted(table_words(graph)) == [b"apple", b"banana", b"cherry", b"date"]
    (values,) = [name for name in graph if name.endswith("embedded_values")]
    right = const_value(graph, Tensor(values))
    assert right is not None
    wrong = right + 10  # every word now maps to another id
    graph.set_attr(values, "value", const_attrs(wrong)["value"])
    before, after = original.to_graph_def(), graph.to_graph_def()
    keywords: dict[str, Any] = {"init": original.init, "candidate_init": graph.init, "samples": 3}
    assert verify(before, after, graph.inputs, graph.outputs, **keywords).status == PASSED  # "s17" is no key
    caught = verify(before, after, graph.inputs, graph.outputs, words=table_words(graph), **keywords)
    assert caught.status == FAILED


def test_as_function_fills_the_tables_before_reading_them(built: Built) -> None:
    import optimizer

    graph = optimizer.load(built.folder)
    optimizer.optimize(graph)
    run = optimizer.as_function(graph)
    for _ in range(2):  # filling a filled table again with the same contents is allowed
        actual = run(*[built.feeds[key] for key in sorted(built.feeds)])
        for got, want in zip(actual, built.expected, strict=True):
            np.testing.assert_array_equal(np.asarray(got), want)
