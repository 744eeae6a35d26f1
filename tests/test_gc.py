"""Pausing the cyclic garbage collector around bulk work."""

from __future__ import annotations

import gc

from optimizer._gc import gc_paused


def test_the_collector_is_paused_inside_restored_after_and_nesting_keeps_it_off() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_what_the_block_built_is_left_for_a_full_collection_only() -> None:
    with gc_paused():
        built = [{"n": index} for index in range(10_000)]
    young, middle, _ = gc.get_count()
    assert young < 1_000 and middle < 1_000, "the block's objects were moved out of the young generations"
    assert gc.get_freeze_count() == 0, "nothing stays frozen"
    cycle: list[object] = []
    cycle.append(cycle)
    del cycle, built
    assert gc.collect() >= 1  # a full collection still finds garbage made inside or after the block
