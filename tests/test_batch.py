"""Batch mode's building blocks: output naming and running tasks in processes."""

from __future__ import annotations

from rich.console import Console

from optimizer.batch import output_paths, run_batch
from optimizer.sandbox import Limits


def test_outputs_keep_file_names_and_never_collide() -> None:
    paths = output_paths(["a/model.pb", "b/model.pb", "c/other.pbtxt", "plain"], "out", "pb")
    assert paths == ["out/a_model.pb", "out/b_model.pb", "out/other.pb", "out/plain.pb"]
    assert len(set(paths)) == len(paths)


def work(number: int) -> dict[str, int]:
    if number == 2:
        raise SystemExit("worker dies")
    return {"code": 0, "value": number * number}


def test_results_come_back_in_task_order_and_a_dying_worker_is_reported() -> None:
    console = Console(quiet=True)
    results = run_batch(work, [3, 2, 1], 2, str, console)
    assert results[0] == {"code": 0, "value": 9} and results[2] == {"code": 0, "value": 1}
    assert results[1]["code"] == 3 and "died" in results[1]["error"]
    assert [r["value"] for r in run_batch(work, [3, 1], 1, str, console)] == [9, 1]


def hostile(number: int) -> dict[str, int]:
    if number == 1:
        import ctypes

        ctypes.string_at(0)  # SIGSEGV
    if number == 2:
        while True:
            pass
    return {"code": 0, "value": number}


def test_a_crash_or_a_hang_is_its_task_s_row_and_the_others_finish() -> None:
    results = run_batch(hostile, [0, 1, 2, 3], 1, str, Console(quiet=True), Limits(seconds=3))
    assert results[0] == {"code": 0, "value": 0} and results[3] == {"code": 0, "value": 3}
    assert results[1] == {"code": 2, "error": "optimizing: crashed with SIGSEGV"}
    assert results[2] == {"code": 2, "error": "optimizing: took longer than the time limit of 3 s (--time-limit)"}
