"""`benchmarks/scale.py`'s table: the ratios to Grappler, the edit floor, and a replay that differs."""

from __future__ import annotations

from typing import Any

from benchmarks.scale import markdown


def _row(edits: dict[str, Any]) -> dict[str, Any]:
    return {
        "size": 400_000,
        "ours": {"seconds": 6.0, "load_seconds": 1.0, "passes_seconds": 4.8, "save_seconds": 0.2, "nodes": 10},
        "grappler": {"seconds": 20.0, "nodes": 12},
        "optimize_for_inference": {"seconds": 15.0, "nodes": 30},
        "edits": edits,
        "protobuf": {"seconds": 0.1},
        "roundtrip": {"seconds": 0.6},
    }


def test_the_table_gives_ours_and_the_edit_floor_against_grappler() -> None:
    table = markdown([_row({"seconds": 3.0, "matches": True})])
    assert "| 400,000 | 6.00 (1.00 + 4.80 + 0.20) | 20.00 | 15.00 | 0.30 | 3.00 | 0.15 | 10 / 12 / 30 |" in table


def test_a_replay_that_differs_gives_no_floor() -> None:
    table = markdown([_row({"seconds": 3.0, "matches": False})])
    assert "| 0.30 | 3.00 | replay differs |" in table


def test_a_size_without_grappler_has_no_ratios() -> None:
    row = {**_row({}), "grappler": {}, "optimize_for_inference": {}}
    assert "| 20.00 |" not in markdown([row]) and "| - | - | - | - |" in markdown([row])
