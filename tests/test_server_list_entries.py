"""A list of versions sends each version's JSON kept by the catalog rows it was made of
(``registry.server.entries``): the bytes are those ``JSONResponse`` made of the encoded
``Registry.list`` results, and every write that changes what a version shows (by the
server or by another process on the same catalog) shows on the next list, while an
unchanged version's entry is reused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx2
from support.handmade import write_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.remote.codec import encode
from registry.server.entries import VersionEntries, json_bytes
from registry.server.paging import page_after, version_positions
from registry.store.list_query import ListQuery

API = "/api/v1"


def _local(served: ServedRegistry) -> Registry:
    return Registry.open(served.home, database_url=served.database_url)


def _listed(served: ServedRegistry, token: str = "reader", **params: Any) -> bytes:
    response = httpx2.get(f"{served.url}{API}/versions", params={"page_size": 1000, **params},
                          headers={"Authorization": f"Bearer {served.tokens[token]}"})  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.content


def _expected(served: ServedRegistry, **filters: Any) -> bytes:
    """What the list sent before entries were kept: ``JSONResponse`` of the encoded
    results of ``Registry.list``, read now by this process, in the server's order."""
    with _local(served) as local:
        query = ListQuery(**filters)
        found = local.list(query)
    keys, descending = version_positions(found, query.sort, query.reverse)
    items, _ = page_after(encode(found), keys, descending, None, 1000)
    return json_bytes({"items": items, "next_page_token": None, "next_cursor": None})


def test_every_write_shows_on_the_next_list_byte_for_byte(
    served: ServedRegistry, tmp_path: Path
) -> None:
    with _local(served) as local:
        for i in range(4):
            local.push(write_adapter(tmp_path / f"e{i}", seed=700 + i), name="entries",
                       tags={"k": str(i)}, data_hashes=[f"sha256:{i:064x}"])  # fmt: skip
        local.record_eval("entries@1", {"acc": 0.5}, dataset="d")
    assert _listed(served, name="entries") == _expected(served, name="entries")
    admin = {"Authorization": f"Bearer {served.tokens['admin']}"}

    def through_server(path: str, body: dict[str, Any]) -> None:
        response = httpx2.post(f"{served.url}{API}{path}", json=body, headers=admin)
        assert response.status_code in (200, 201), response.text

    writes = [
        lambda r: r.record_eval("entries@2", {"acc": 0.75}),
        lambda r: r.record_eval("entries@2", {"acc": -0.0}),
        lambda r: r.set_alias("entries@1", "prod"),
        lambda r: r.set_alias("entries@3", "prod"),  # moved: off 1, onto 3
        lambda r: r.set_tags("entries@3", {"new": "x"}, remove=["k"]),
        lambda r: r.set_tags("entries@1", {"k": "changed"}),
        lambda r: r.describe("entries@4", "described"),
        lambda r: r.yank("entries@4", "bad"),
        lambda r: r.unyank("entries@4"),
        lambda r: r.remove_alias("entries", "prod"),
        lambda r: r.remove("entries@2"),
    ]
    for write in writes:
        before = _listed(served, name="entries")
        with _local(served) as local:  # another process than the server's
            write(local)
        after = _listed(served, name="entries")
        assert after != before
        assert after == _expected(served, name="entries")
    through_server("/evals", {"ref": "entries@3", "scores": {"acc": 0.9}})
    assert _listed(served, name="entries") == _expected(served, name="entries")
    through_server("/aliases", {"ref": "entries@1", "alias": "staging"})
    assert _listed(served, name="entries") == _expected(served, name="entries")
    # Every order and filter sends what Registry.list finds, in its order.
    for filters in (
        {"sort": "acc", "reverse": True},
        {"sort": "created"},
        {"sort": "version", "reverse": True},
        {"alias": "staging"},
        {"tags": {"new": "x"}},
    ):
        params: dict[str, Any] = {"name": "entries", **filters}
        if "tags" in params:
            params["tag"] = [f"{k}={v}" for k, v in params.pop("tags").items()]
        if "reverse" in params:
            params["reverse"] = "true"
        assert _listed(served, **params) == _expected(served, name="entries", **filters)


def test_a_namespaced_list_sends_only_its_own_versions(
    served: ServedRegistry, tmp_path: Path
) -> None:
    with _local(served) as local:
        local.push(write_adapter(tmp_path / "ns-in", seed=801), name="team/listed")
        local.push(write_adapter(tmp_path / "ns-out", seed=802), name="other/listed")
    body = _listed(served, "team-reader", name="*/listed")
    assert body == _expected(served, name="team/*")
    assert b"other/listed" not in body


def _records(registry: Registry, name: str) -> list[Any]:
    return registry.catalog.list_records(ListQuery(name=name).compile())


def test_a_write_to_one_version_remakes_its_entry_alone(tmp_path: Path) -> None:
    with Registry.open(tmp_path / "home", create=True) as registry:
        for i in range(3):
            registry.push(write_adapter(tmp_path / f"v{i}", seed=900 + i), name="kept")
        entries = VersionEntries()
        first = entries.entries(_records(registry, "kept"))
        assert entries.entries(_records(registry, "kept")) == first
        registry.record_eval("kept@2", {"acc": 0.0})
        second = entries.entries(_records(registry, "kept"))
        assert second[0] is first[0] and second[2] is first[2]  # the same objects: kept
        assert second[1] is not first[1] and b'"acc"' in second[1].body
        assert [e.body for e in second] == [
            json_bytes(encode(v)) for v in registry.list(name="kept")
        ]


def test_equal_rows_that_are_sent_differently_are_not_confused(tmp_path: Path) -> None:
    """0.0 and -0.0 are equal in Python but sent as different JSON; each gets its own."""
    with Registry.open(tmp_path / "home", create=True) as registry:
        registry.push(write_adapter(tmp_path / "z", seed=950), name="zero")
        registry.record_eval("zero@1", {"acc": 0.0})
        (record,) = _records(registry, "zero")
    row, evals, *rest = record
    negative = (row, tuple((e[0], -0.0, *e[2:]) for e in evals), *rest)
    entries = VersionEntries()
    assert b'"value":0.0' in entries.entries([record])[0].body
    assert b'"value":-0.0' in entries.entries([negative])[0].body  # type: ignore[list-item]


def test_entries_beyond_the_capacity_start_over(tmp_path: Path) -> None:
    with Registry.open(tmp_path / "home", create=True) as registry:
        for i in range(3):
            registry.push(write_adapter(tmp_path / f"c{i}", seed=960 + i), name="cap")
        entries = VersionEntries(capacity=2)
        records = _records(registry, "cap")
        made = entries.entries(records)
        assert len(entries) <= 2
        assert [e.body for e in made] == [json_bytes(encode(v)) for v in registry.list(name="cap")]
