"""The query parameters of the API: documented in the OpenAPI document (cursor and
page_size on every paged list), and refused with a 400 when malformed, never a 500."""

from __future__ import annotations

import base64
import hashlib
import json

import httpx2
from support.server import ServedRegistry

from registry.server import routes
from registry.server.paging import scope_digest

API = "/api/v1"


def _get(served: ServedRegistry, path: str, **params: str) -> httpx2.Response:
    auth = {"Authorization": f"Bearer {served.tokens['admin']}"}
    return httpx2.get(f"{served.url}{path}", params=params, headers=auth, timeout=60)


def test_every_paged_list_documents_cursor_and_page_size(served: ServedRegistry) -> None:
    document = httpx2.get(f"{served.url}{API}/openapi.json", timeout=60).json()
    paged = []
    for endpoint in routes.table():
        if endpoint.method != "GET" or "{" in endpoint.path:
            continue
        # A list answers next_cursor (alias history needs a stored name: checked below).
        response = _get(served, endpoint.path)
        if response.status_code == 200 and "next_cursor" in response.json():
            paged.append(endpoint.path)
            operation = document["paths"][endpoint.path]["get"]
            listed = {p["name"]: p for p in operation.get("parameters", [])}
            assert {"cursor", "page_size"} <= set(listed), endpoint.path
            assert listed["page_size"]["in"] == "query"
            assert listed["page_size"]["schema"]["type"] == "integer"
    assert len(paged) >= 6, paged  # versions, log, tokens, keys, bases, base relations
    history = document["paths"][f"{API}/aliases/history"]["get"]["parameters"]
    assert {"cursor", "page_size", "name"} <= {p["name"] for p in history}
    resolve = {p["name"]: p for p in document["paths"][f"{API}/resolve"]["get"]["parameters"]}
    assert resolve["ref"]["required"] is True


def test_malformed_numbers_are_refused_not_failed(served: ServedRegistry) -> None:
    # '²' is a digit to str.isdigit() but not to int().
    for path, key in (("/log", "page_size"), ("/versions", "page_size"), ("/tokens", "page_size"),
                      ("/log", "limit"), ("/versions", "limit")):  # fmt: skip
        response = _get(served, f"{API}{path}", **{key: "²"})
        assert response.status_code == 400, (path, key, response.text)
    response = _get(served, f"{API}/lineage", ref="a", depth="²")
    assert response.status_code == 400, response.text
    # page_size=0 is refused on /versions as on every other list, not read as the default.
    response = _get(served, f"{API}/versions", page_size="0")
    assert response.status_code == 400, response.text
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    response = httpx2.post(f"{served.url}{API}/push/bundle", params={"header_bytes": "²"},
                           content=b"{}", headers=auth, timeout=60)  # fmt: skip
    assert response.status_code == 400, response.text


def test_a_crafted_cursor_past_64_bits_is_refused(served: ServedRegistry) -> None:
    scope = [None, None, None, "None"]  # the admin's log, unfiltered, no limit
    body = {"l": "log", "s": scope_digest("log", scope), "k": [10**30, 0]}
    cursor = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    response = _get(served, f"{API}/log", cursor=cursor)
    assert response.status_code == 400, response.text
    assert "cursor" in response.json()["error"]["message"]


def test_a_file_path_that_is_also_a_folder_is_refused(served: ServedRegistry) -> None:
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    data = {"a": b"A", "a/b": b"B"}
    files = {path: hashlib.sha256(content).hexdigest() for path, content in data.items()}
    with httpx2.Client(base_url=served.url, headers=auth, timeout=60) as http:
        for content in data.values():
            sha = hashlib.sha256(content).hexdigest()
            http.put(f"{API}/uploads/{sha}", content=content).raise_for_status()
        response = http.post(f"{API}/push", json={"files": files, "name": "clash"})
    assert response.status_code == 400, response.text
    assert "also a folder" in response.json()["error"]["message"]
    header = json.dumps(
        {"push": {"files": files, "name": "clash"}, "sizes": {"a": 1, "a/b": 1}}
    ).encode()
    response = httpx2.post(f"{served.url}{API}/push/bundle", params={"header_bytes": len(header)},
                           content=header + b"AB", headers=auth, timeout=60)  # fmt: skip
    assert response.status_code == 400, response.text
