"""`benchmarks/edit_floor.py`: the recorded edits of a run, replayed on a fresh load, give the run's very output."""

from __future__ import annotations

from pathlib import Path

import optimizer
from benchmarks.edit_floor import edit_floor, record_edits, replay
from benchmarks.synthetic import synthetic_graph
from optimizer import Graph, PassContext, function_pass

ROOT = Path(__file__).resolve().parent.parent


def _synthetic(tmp_path: Path) -> Path:
    path = tmp_path / "synthetic.pb"
    path.write_bytes(synthetic_graph(3000).SerializeToString())
    return path


def test_the_replay_of_the_default_pipeline_writes_its_very_output(tmp_path: Path) -> None:
    path = _synthetic(tmp_path)
    graph = optimizer.load(str(path), ["x"], ["y"])
    optimizer.optimize(graph)
    optimizer.save(graph, tmp_path / "optimized.pb")
    floor = edit_floor(str(path), ["x"], ["y"], str(tmp_path / "replayed.pb"))
    assert floor["matches"] and floor["nodes"] == len(graph) < 3000 / 5
    assert floor["edits"] > 3000 / 2  # prune, identity, cse, fold and arith all edited
    assert (tmp_path / "replayed.pb").read_bytes() == (tmp_path / "optimized.pb").read_bytes()
    assert floor["seconds"] >= floor["load_seconds"] + floor["edits_seconds"] + floor["save_seconds"] - 1e-6


def test_replay_covers_folding_batch_norms_and_new_constants() -> None:
    path = str(ROOT / "fixtures" / "small_cnn.pb")
    graph = optimizer.load(path)
    edits = record_edits(graph)
    assert {"add_node_def", "set_attr"} & {name for name, _, _ in edits}
    fresh = optimizer.load(path)
    replay(fresh, edits)
    assert fresh.to_bytes() == graph.to_bytes()


def test_an_edit_made_outside_the_graph_api_shows_as_a_mismatch(tmp_path: Path) -> None:
    @function_pass("retype-behind-the-back", register=False)
    def retype(graph: Graph, ctx: PassContext) -> None:
        """Set an attr on the proto itself, which no recorded method sees."""
        graph.node("x").proto.attr["_marker"].b = True

    path = _synthetic(tmp_path)
    floor = edit_floor(str(path), ["x"], ["y"], str(tmp_path / "out.pb"), passes=[retype(), *_default_passes()])
    assert not floor["matches"]


def _default_passes() -> list[optimizer.Pass]:
    from optimizer.pipeline import Pipeline
    from optimizer.registry import DEFAULT_PIPELINE

    return list(Pipeline.of(DEFAULT_PIPELINE))
