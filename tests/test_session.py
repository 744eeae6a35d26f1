"""`optimizer/session.py`: a graph imported with only the nodes a session feeds and fetches runs as a full one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from optimizer._tf import tensorflow
from optimizer.graph_io import read_graph_def
from optimizer.session import import_graph, open_session, run_graph

ROOT = Path(__file__).resolve().parent.parent
tf = tensorflow()


def test_a_session_over_the_named_nodes_only_runs_as_one_over_all_of_them() -> None:
    graph_def = read_graph_def(ROOT / "fixtures" / "small_cnn.pb")
    feed = np.random.default_rng(0).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    expected = run_graph(graph_def, {"images:0": feed}, ["probabilities:0"])
    with open_session(graph_def, ["images", "probabilities"]) as session:
        assert {operation.name for operation in session.graph.get_operations()} == {"images", "probabilities"}
        (actual,) = session.run(["probabilities:0"], feed_dict={"images:0": feed})
    np.testing.assert_array_equal(actual, expected[0])


def test_without_nodes_every_node_is_imported() -> None:
    graph_def = read_graph_def(ROOT / "fixtures" / "small_cnn.pb")
    assert len(import_graph(graph_def).get_operations()) == len(graph_def.node)
    assert [operation.name for operation in import_graph(graph_def, ["images"]).get_operations()] == ["images"]
