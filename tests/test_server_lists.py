"""Cursor paging of every list besides ``/versions``: the audit log, alias history,
tokens, trusted keys, base records and relations. Entries added between two pages are
neither repeated nor lost; a cursor of another list or made by hand is a clean 400; a
namespaced token's log pages are full pages of its own events only."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.remote.client import RemoteRegistry

API = "/api/v1"


def _get(served: ServedRegistry, token: str, path: str, **params: Any) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {served.tokens[token]}"}
    return httpx2.get(f"{served.url}{API}{path}", headers=headers, params=params, timeout=60)


def _page(served: ServedRegistry, token: str, path: str, **params: Any) -> dict[str, Any]:
    response = _get(served, token, path, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"items", "next_cursor"} <= set(body)
    return body  # type: ignore[no-any-return]


def _walk(served: ServedRegistry, token: str, path: str, **params: Any) -> list[Any]:
    items: list[Any] = []
    body = _page(served, token, path, **params)
    while True:
        items += body["items"]
        if body["next_cursor"] is None:
            return items
        body = _page(served, token, path, **{**params, "cursor": body["next_cursor"]})


@pytest.fixture(scope="module")
def filled(served: ServedRegistry, tmp_path_factory: pytest.TempPathFactory) -> Registry:
    """Versions in two namespaces, pushed alternately, with alias moves and evals."""
    root = tmp_path_factory.mktemp("lists")
    admin = Registry.open(served.url, token=served.tokens["admin"])
    for n in range(6):
        name = "team/lm" if n % 2 else "other/lm"
        pushed = admin.push(write_adapter(root / f"a{n}", seed=100 + n), name=name)
        admin.set_alias(pushed.version.ref, "stable")
    return admin


def test_log_pages_lose_and_repeat_nothing_while_events_arrive(
    served: ServedRegistry, filled: Registry, tmp_path: Path
) -> None:
    before = [e["id"] for e in _walk(served, "admin", "/log", page_size=1000)]
    first = _page(served, "admin", "/log", page_size=3)
    assert [e["id"] for e in first["items"]] == before[:3]  # newest first
    # New events arrive between pages (they are newer: not in this walk)...
    filled.record_eval("team/lm@1", {"f1": 0.5})
    filled.set_alias("team/lm@1", "canary")
    seen = [e["id"] for e in first["items"]]
    cursor = first["next_cursor"]
    while cursor is not None:
        body = _page(served, "admin", "/log", page_size=3, cursor=cursor)
        seen += [e["id"] for e in body["items"]]
        cursor = body["next_cursor"]
    # ...and every event of the first page's moment comes exactly once.
    assert seen == before and len(set(seen)) == len(seen)
    # The client follows cursors: a small page size shows what the server's log holds,
    # oldest first, and --limit keeps the newest, as the local log does.
    small = RemoteRegistry(served.url, token=served.tokens["admin"], page_size=2)
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert [e.id for e in small.log()] == [e.id for e in local.log()]
        assert [e.id for e in small.log(limit=5)] == [e.id for e in local.log(limit=5)]
        assert [e.id for e in small.log("team/lm", actions=["alias-set"])] == [
            e.id for e in local.log("team/lm", actions=["alias-set"])
        ]
    small.close()
    # limit caps the walk across pages too.
    assert len(_walk(served, "admin", "/log", page_size=2, limit=5)) == 5


def test_a_namespaced_log_pages_full_pages_of_its_own_events(
    served: ServedRegistry, filled: Registry
) -> None:
    mine = [e for e in _walk(served, "admin", "/log") if (e["name"] or "").startswith("team/")]
    pages = []
    body = _page(served, "team-reader", "/log", page_size=2)
    while True:
        pages.append(body["items"])
        if body["next_cursor"] is None:
            break
        body = _page(served, "team-reader", "/log", page_size=2, cursor=body["next_cursor"])
    # Filtering happens in the query: only the last page may be short.
    assert all(len(p) == 2 for p in pages[:-1]) and 1 <= len(pages[-1]) <= 2
    flat = [e for p in pages for e in p]
    assert [e["id"] for e in flat] == [e["id"] for e in mine]
    assert all(e["name"].startswith("team/") for e in flat)
    assert "other/" not in json.dumps(pages)


def test_alias_history_tokens_and_bases_page_by_key(
    served: ServedRegistry, filled: Registry
) -> None:
    history = _page(served, "reader", "/aliases/history", name="team/lm", page_size=1)
    assert len(history["items"]) == 1 and history["next_cursor"]
    filled.set_alias("team/lm@1", "stable")  # appended while paging: seen at the end
    walked = [history["items"][0]]
    cursor = history["next_cursor"]
    while cursor:
        body = _page(served, "reader", "/aliases/history", name="team/lm", page_size=1,
                     cursor=cursor)  # fmt: skip
        walked += body["items"]
        cursor = body["next_cursor"]
    assert walked == [json.loads(json.dumps(c)) for c in _walk(
        served, "reader", "/aliases/history", name="team/lm")]  # fmt: skip
    assert [c.version for c in filled.alias_history("team/lm")] == [c["version"] for c in walked]

    first = _page(served, "admin", "/tokens", page_size=2)
    names = [t["name"] for t in first["items"]]
    filled.create_token("aaa-early", "reader")  # sorts before the cursor: not repeated
    filled.create_token("zzz-late", "reader")  # after it: listed
    rest = _walk(served, "admin", "/tokens", page_size=2, cursor=first["next_cursor"])
    names += [t["name"] for t in rest]
    assert len(names) == len(set(names)) and "zzz-late" in names and "aaa-early" not in names
    assert sorted(names) == names
    assert "secret" not in json.dumps(rest)
    assert sorted(t.name for t in filled.tokens()) == sorted([*names, "aaa-early"])
    assert _page(served, "reader", "/bases", page_size=5)["next_cursor"] is None
    assert _page(served, "reader", "/bases/relations")["items"] == []


def _cursor(body: dict[str, Any]) -> str:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_forged_and_foreign_cursors_are_refused(served: ServedRegistry, filled: Registry) -> None:
    log_cursor = _page(served, "admin", "/log", page_size=1)["next_cursor"]
    token_cursor = _page(served, "admin", "/tokens", page_size=1)["next_cursor"]
    version_cursor = _page(served, "admin", "/versions", page_size=1)["next_cursor"]
    refused = [
        ("/log", {"cursor": "zz"}),
        ("/log", {"cursor": "%00"}),
        ("/log", {"cursor": token_cursor}),  # another list's
        ("/log", {"cursor": version_cursor}),
        ("/log", {"cursor": log_cursor, "actor": "admin"}),  # the same list filtered otherwise
        ("/log", {"cursor": log_cursor, "limit": 3}),
        ("/tokens", {"cursor": log_cursor}),
        ("/versions", {"cursor": log_cursor}),
        ("/aliases/history", {"name": "team/lm", "cursor": token_cursor}),
        ("/log", {"cursor": _cursor({"l": "log", "s": "0" * 16, "k": [1, 0]})}),
        ("/log", {"cursor": _cursor({"l": "log", "s": "x", "k": ["1", True]})}),
        ("/keys", {"cursor": _cursor([["s", "x"]])}),
        ("/bases", {"cursor": token_cursor}),  # an empty list checks its cursors too
        ("/log", {"page_size": 0}),
        ("/log", {"page_size": 100000}),
        ("/log", {"limit": 0}),
    ]
    for path, params in refused:
        response = _get(served, "admin", path, **params)
        assert response.status_code == 400, (path, params, response.text)
        assert response.json()["error"]["code"] == "invalid_argument"
        assert "\n" not in response.json()["error"]["message"]
    # A namespaced token gets the same 400 for a cursor made by another namespace's walk.
    response = _get(served, "team-reader", "/log", cursor=log_cursor)
    assert response.status_code == 400


def test_the_log_command_shows_the_same_remotely(served: ServedRegistry, filled: Registry) -> None:
    from click.testing import CliRunner

    from registry.cli import main

    def log(target: str, env: dict[str, str], *args: str) -> Any:
        result = CliRunner().invoke(main, ["--registry", target, "log", "--json", *args], env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    remote = {"ADAPTERS_TOKEN": served.tokens["admin"]}
    local = {"ADAPTERS_DATABASE_URL": served.database_url}
    for args in ((), ("--limit", "3"), ("team/lm",)):
        assert log(served.url, remote, *args) == log(str(served.home), local, *args)
