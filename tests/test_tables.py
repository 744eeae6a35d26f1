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
from optimizer.session import open_session
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
    """Run the written `.pb` in a fresh session as a user would: the reported initializers first."""
    by_key = [feeds[key] for key in sorted(feeds)]  # the signature's inputs, in key order (as the report lists)
    with open_session(read_graph_def(path)) as session:
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
    built.hide_vocabularies()
    try:
        actual = run_pb(out, report, built.feeds)
    finally:
        built.restore_vocabularies()
    assert len(actual) == len(built.expected)
    for got, want in zip(actual, built.expected, strict=True):
        np.testing.assert_array_equal(got, want)
