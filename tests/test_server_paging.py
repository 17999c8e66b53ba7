"""Keyset paging of ``GET /versions``: the cursor names a position, not a count, so pages
stay exact while versions are pushed; every sort order pages through every version once."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry

from registry import ArgumentError, Registry
from registry.server.paging import decode_cursor, page_after, version_positions

API = "/api/v1"


def _pages(found: list, sort: str, reverse: bool, size: int) -> list[list[str]]:  # type: ignore[type-arg]
    keys, descending = version_positions(found, sort, reverse)
    pages, cursor = [], None
    while True:
        page, cursor = page_after(found, keys, descending, cursor, size)
        pages.append([v.ref for v in page])
        if cursor is None:
            return pages


@pytest.mark.parametrize("sort", ["name", "version", "created", "accuracy", "accuracy@gsm8k"])
@pytest.mark.parametrize("reverse", [False, True])
def test_every_order_pages_through_every_version_once(
    registry: Registry, tmp_path: Path, sort: str, reverse: bool
) -> None:
    for index in range(7):
        name = "pa" if index % 2 else "pb"
        version = registry.push(write_adapter(tmp_path / f"v{index}", seed=index), name=name)
        if index % 3:  # some with the metric, two with the same value, some without
            registry.record_eval(version.version.ref, {"accuracy": min(index, 4) / 10},
                                 dataset="gsm8k")  # fmt: skip
    listed = registry.list(sort=sort, reverse=reverse)
    pages = _pages(listed, sort, reverse, size=3)
    flat = [ref for page in pages for ref in page]
    assert len(pages) == 3 and all(pages)
    assert sorted(flat) == sorted(v.ref for v in listed) and len(set(flat)) == len(flat)
    if sort in ("name", "version"):  # no ties: exactly the library's order
        assert flat == [v.ref for v in listed]


def test_a_bad_cursor_is_refused(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_adapter(tmp_path / "one", seed=1))
    found = registry.list()
    keys, descending = version_positions(found, "name", False)
    for bad in ("zz", "W10", "WyJ4Il0", "eyJhIjoxfQ"):
        with pytest.raises(ArgumentError, match="cursor"):
            page_after(found, keys, descending, bad, 10)
    # A cursor of another order is refused, not misread.
    created_keys, _ = version_positions(found, "created", False)
    from registry.server.paging import encode_cursor

    with pytest.raises(ArgumentError, match="cursor"):
        page_after(found, keys, descending, encode_cursor(created_keys[0]), 10)
    assert decode_cursor(encode_cursor(keys[0])) == keys[0]


def test_pages_stay_exact_while_versions_are_pushed(served: ServedRegistry, tmp_path: Path) -> None:
    writer = Registry.open(served.url, token=served.tokens["writer"])
    for seed in range(4):
        writer.push(write_adapter(tmp_path / f"kp-{seed}", seed=40 + seed), name="keyset")
    h = {"Authorization": f"Bearer {served.tokens['reader']}"}

    def page(**params: str | int) -> dict:  # type: ignore[type-arg]
        response = httpx2.get(f"{served.url}{API}/versions", headers=h,
                              params={"name": "keyset", "page_size": 2, **params})  # fmt: skip
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    first = page()
    assert [i["version"] for i in first["items"]] == ["1", "2"]
    # A version that sorts before the cursor arrives between two pages...
    writer.push(write_adapter(tmp_path / "kp-early", seed=49), name="keyset", version="0.5")
    by_cursor = page(cursor=first["next_cursor"])
    by_offset = page(page_token=first["next_page_token"])
    # ...the cursor goes on where it was; the offset repeats "2".
    assert [i["version"] for i in by_cursor["items"]] == ["3", "4"]
    assert [i["version"] for i in by_offset["items"]] == ["2", "3"]
    assert by_cursor["next_cursor"] is None and by_cursor["next_page_token"] is None
    both = httpx2.get(f"{served.url}{API}/versions", headers=h,
                      params={"cursor": first["next_cursor"], "page_token": "x"})  # fmt: skip
    assert both.status_code == 400
    bad = httpx2.get(f"{served.url}{API}/versions", headers=h, params={"cursor": "zz"})
    assert bad.status_code == 400 and "cursor" in bad.json()["error"]["message"]
    # The client pages by cursor, a page of 1,000 at a time.
    assert [v.version for v in writer.list(name="keyset")] == ["0.5", "1", "2", "3", "4"]
    writer.close()
