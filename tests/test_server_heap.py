"""The server freezes its heap before it serves (registry/server/heap.py)."""

from __future__ import annotations

import gc
import sys

from registry.server.heap import settle_heap


def test_settle_heap_imports_what_requests_need_and_freezes_the_heap() -> None:
    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert "registry.formats.reader" in sys.modules and "numpy" in sys.modules
        assert gc.get_freeze_count() > before
        # A young object made afterwards is still the collector's to free.
        cycle: list[object] = []
        cycle.append(cycle)
        assert gc.is_tracked(cycle)
    finally:
        gc.unfreeze()
