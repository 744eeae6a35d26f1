"""Pause Python's cyclic garbage collector around bulk work on big graphs.

Lifting a million-node graph allocates millions of small dicts; each full collection walks the whole heap, which
makes bulk building superlinear. The IR makes no reference cycles worth collecting mid-build, so collection waits.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector inside the block (re-entrant; restores the previous state)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            # What the block built sits in the youngest generation, which the next collection would walk whole
            # (a quarter of a second for a 400k-node graph). Freezing and unfreezing moves it all to the oldest
            # generation at no cost, where only a full collection looks at it.
            gc.freeze()
            gc.unfreeze()
            gc.enable()
