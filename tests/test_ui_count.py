"""The version lists of the web UI count matches only up to a cap: past it a page says
"more than N" and pages on with previous and next links instead of "page X of Y"."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.handmade import write_adapter

from registry import Registry
from registry.server.ui import pages
from registry.store.catalog import browse
from registry.store.catalog.browse import BrowsePage, browse_versions
from registry.store.catalog.catalog import ListFilter


@pytest.fixture
def five(sqlite_registry: Registry, tmp_path: Path) -> Registry:
    for seed in range(5):
        sqlite_registry.push(write_adapter(tmp_path / str(seed), seed=seed), name="chat")
    return sqlite_registry


def test_counts_stop_at_the_cap(five: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = five.catalog.engine
    everything = browse_versions(engine, ListFilter(), size=2)
    assert everything == BrowsePage(everything.ids, 5, capped=False, more=True)
    monkeypatch.setattr(browse, "COUNT_CAP", 3)
    first = browse_versions(engine, ListFilter(), size=2)
    assert first.ids == everything.ids
    assert (first.total, first.capped, first.more) == (3, True, True)
    # Past the cap: the page is read on its own and still knows whether another follows.
    last = browse_versions(engine, ListFilter(), offset=4, size=2)
    assert len(last.ids) == 1 and (last.total, last.capped, last.more) == (3, True, False)
    beyond = browse_versions(engine, ListFilter(), offset=10, size=2)
    assert beyond == BrowsePage((), 3, capped=True, more=False)
    monkeypatch.setattr(browse, "COUNT_CAP", 5)  # exactly at the cap is still exact
    exact = browse_versions(engine, ListFilter(), offset=4, size=1)
    assert (exact.total, exact.capped, exact.more) == (5, False, False)
    few = browse_versions(engine, ListFilter(), search="nothing-holds-this", size=2)
    assert few == BrowsePage((), 0, capped=False, more=False)


def test_a_capped_count_reads_more_than_and_pages_without_a_last() -> None:
    capped = pages.Found([], pages.Count(2000, capped=True), more=True)
    assert str(capped.count) == "more than 2,000"
    assert pages._pages(capped, 7) == {"page": 7, "last": None, "prev": 6, "next": 8}
    exact = pages.Found([], pages.Count(120, capped=False), more=False)
    assert str(exact.count) == "120"
    assert pages._pages(exact, 3) == {"page": 3, "last": 3, "prev": 2, "next": None}
