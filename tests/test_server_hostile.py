"""Hostile HTTP input: each a clean 4xx/408 with nothing written, while the server keeps
serving everyone else; on every server backend (support/server_matrix.py), where "nothing
written" means no catalog row (SQLite or PostgreSQL), no staged upload and no blob (a
file, or an object or open multipart upload in the S3 bucket)."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry, stage_uploads
from support.server_state import stored_state

from registry import Registry

API = "/api/v1"
LIMIT = 16384
SERVER_ARGS = ("--max-upload-bytes", str(LIMIT), "--body-timeout", "1.5", "--request-timeout", "4")


@pytest.fixture(scope="module")
def hostile(served: ServedRegistry) -> Iterator[ServedRegistry]:
    """The module's server (on each backend), with the limits of ``SERVER_ARGS``."""
    yield served


def _auth(served: ServedRegistry, role: str = "admin") -> dict[str, str]:
    return {"Authorization": f"Bearer {served.tokens[role]}"}


def _raw(url: str, request: bytes, pause: float = 0.0) -> bytes:
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=20) as sock:
        sock.sendall(request)
        if pause:
            time.sleep(pause)
        chunks = []
        while True:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks)


def _status(raw: bytes) -> int:
    return int(raw.split(b" ", 2)[1])


def test_bad_json_bodies_are_400(hostile: ServedRegistry) -> None:
    before = stored_state(hostile)
    url = f"{hostile.url}{API}/evals"
    h = {**_auth(hostile), "Content-Type": "application/json"}
    cases = {
        "malformed": b'{"ref": "x@1", "scores": {',
        "not an object": b"[1, 2, 3]",
        "deeply nested": b'{"ref": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "wrong types": json.dumps({"ref": 3, "scores": {"f1": "high"}}).encode(),
        "unknown field": json.dumps({"ref": "x@1", "scores": {}, "admin": True}).encode(),
        "bool as number": json.dumps({"ref": "x@1", "scores": {"f1": True}}).encode(),
        "nul in ref": json.dumps({"ref": "x\u0000@1", "scores": {"f1": 1}}).encode(),
        # PostgreSQL cannot store a NUL in text: refused as input, never a catalog error.
        "nul in notes": json.dumps(
            {"ref": "x@1", "scores": {"f1": 1}, "notes": "a\u0000b"}
        ).encode(),
    }
    for label, body in cases.items():
        response = httpx2.post(url, content=body, headers=h)
        assert response.status_code == 400, (label, response.text)
        assert response.json()["error"]["code"] in ("bad_json", "invalid_argument",
                                                    "invalid_name"), label  # fmt: skip
    big = b'{"ref": "' + b"a" * (2 << 20) + b'"}'
    response = httpx2.post(url, content=big, headers=h)
    assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"
    assert stored_state(hostile) == before


def test_names_with_path_tricks_are_refused(hostile: ServedRegistry) -> None:
    before = stored_state(hostile)
    h = _auth(hostile)
    for ref in ("../../etc/passwd", "..%2F..%2Fetc", "a/../b", "x\x00y", "%00", "a/b/c",
                "/abs", "a\\b", "NAME", ""):  # fmt: skip
        response = httpx2.get(f"{hostile.url}{API}/resolve", params={"ref": ref}, headers=h)
        assert response.status_code == 400, (ref, response.text)
    # Encoded traversal in the path itself never reaches a file.
    paths = (f"{API}/blobs/..%2F..%2Fcatalog.db", f"{API}/blobs/%2e%2e%2f%2e%2e",
             f"{API}/uploads/..%2Fx", f"{API}/uploads/%00", f"{API}/../healthz%00")  # fmt: skip
    for path in paths:
        response = httpx2.request(
            "PUT" if "uploads" in path else "GET", f"{hostile.url}{path}", headers=h,
            params={"ref": "x@1"}, content=b"" if "uploads" in path else None,
        )  # fmt: skip
        assert 400 <= response.status_code < 500, (path, response.text)
    # File paths of a push stay inside the staged directory.
    data = b"payload"
    sha = hashlib.sha256(data).hexdigest()
    put = httpx2.put(f"{hostile.url}{API}/uploads/{sha}", content=data, headers=h)
    assert put.status_code in (200, 201)
    for path in ("../escape.json", "/etc/x", "a/../../b", "a\x00b", "a\\..\\b", "./x", ""):
        response = httpx2.post(
            f"{hostile.url}{API}/push", json={"files": {path: sha}, "name": "trick"}, headers=h
        )
        assert response.status_code == 400, (path, response.text)
    assert stored_state(hostile).catalog == before.catalog
    assert not list((hostile.home / "tmp").glob("push-*"))


def test_bases_and_versions_no_catalog_can_hold_are_refused(
    hostile: ServedRegistry, tmp_path: Path
) -> None:
    """A base model named (``base``, or the adapter's config) or a version beyond what the
    catalog's columns hold, or with a NUL (PostgreSQL stores none), is bad input on every
    backend: never a failure of the server or of its catalog."""
    h = _auth(hostile, "writer")
    http = httpx2.Client(base_url=hostile.url, headers=h)
    files = stage_uploads(http, write_adapter(tmp_path / "plain", seed=31))
    before = stored_state(hostile)
    for base in ("b" * 300, f"org/{'b' * 253}", f"b@{'r' * 300}", "b\x00c", "b@r\x00"):
        response = http.post(f"{API}/push", json={"files": files, "name": "based", "base": base})
        assert response.status_code == 400, (base[:20], response.text)
    version = "1." + ".".join(["1"] * 40)
    response = http.post(f"{API}/push", json={"files": files, "name": "based", "version": version})
    assert response.status_code == 400 and "at most 64" in response.text, response.text
    for key, value in (("base_model_name_or_path", "m" * 300), ("revision", "r" * 300),
                       ("base_model_name_or_path", "m\x00n")):  # fmt: skip
        directory = write_adapter(tmp_path / f"config-{len(value)}-{key}", seed=32)
        config = json.loads((directory / "adapter_config.json").read_text())
        (directory / "adapter_config.json").write_text(json.dumps({**config, key: value}))
        staged = stage_uploads(http, directory)
        response = http.post(f"{API}/push", json={"files": staged, "name": "based"})
        assert 400 <= response.status_code < 500, (key, response.text)
    assert stored_state(hostile).catalog == before.catalog
    # As long as a name may be, but no path (a component over 255 bytes): a base name the
    # server has no directory of, like any other.
    response = http.post(f"{API}/push", json={"files": files, "name": "based", "base": "b" * 256})
    assert response.status_code == 201, response.text
    assert response.json()["version"]["manifest"]["base_model"]["name"] == "b" * 256
    http.close()


def test_uploads_over_the_limit_or_their_length(hostile: ServedRegistry) -> None:
    before = stored_state(hostile)
    h = _auth(hostile, "writer")
    big = b"x" * (LIMIT + 1)
    sha = hashlib.sha256(big).hexdigest()
    response = httpx2.put(f"{hostile.url}{API}/uploads/{sha}", content=big, headers=h)
    assert response.status_code == 413
    # Bytes that do not hash to the name given.
    response = httpx2.put(f"{hostile.url}{API}/uploads/{'a' * 64}", content=b"abc", headers=h)
    assert response.status_code == 422
    # More bytes than declared: the declared part does not hash to the name, and the rest
    # is not a request.
    body = b"y" * 100
    sha = hashlib.sha256(body).hexdigest().encode()
    token = hostile.tokens["writer"].encode()
    raw = _raw(
        hostile.url,
        b"PUT " + API.encode() + b"/uploads/" + sha + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + token + b"\r\nContent-Length: 50\r\n\r\n" + body,
    )
    assert 400 <= _status(raw) < 500
    # Fewer bytes than declared, then the client goes away.
    _raw(
        hostile.url,
        b"PUT " + API.encode() + b"/uploads/" + sha + b" HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + token + b"\r\nContent-Length: 200\r\n\r\n" + body[:10],
        pause=0.2,
    )
    # Without a length.
    response = httpx2.put(
        f"{hostile.url}{API}/uploads/{sha.decode()}", content=iter([body]), headers=h
    )
    assert response.status_code == 411
    time.sleep(2)  # the abandoned request times out
    assert stored_state(hostile) == before
    assert not list((hostile.home / "tmp" / "uploads").glob(".part-*"))


def test_direct_uploads_over_the_limit_short_or_not_the_bytes_named(
    hostile: ServedRegistry,
) -> None:
    """Uploads sent straight to the object store (pre-signed URLs) are checked when claimed:
    each refused with nothing kept, neither the client's object nor a copy of it."""
    before = stored_state(hostile)
    h = _auth(hostile, "writer")

    def offer(data: bytes) -> tuple[str, dict[str, object]]:
        sha = hashlib.sha256(data).hexdigest()
        response = httpx2.post(f"{hostile.url}{API}/uploads/presign", json={"files": [sha]},
                               headers=h)  # fmt: skip
        assert response.status_code == 200, response.text
        return sha, response.json()

    def claim(sha: str, key: str) -> httpx2.Response:
        return httpx2.post(f"{hostile.url}{API}/uploads/{sha}/staged", json={"key": key}, headers=h)

    if not hostile.backend.endswith("+s3"):
        sha, answer = offer(b"local")
        assert answer == {"direct": False, "uploads": {}}
        assert claim(sha, f"incoming/{'0' * 32}/{sha}").status_code == 400
        assert stored_state(hostile) == before
        return
    # Over the server's limit: the store took it (a pre-signed PUT has no size limit), the
    # claim does not.
    sha, answer = offer(b"z" * (LIMIT + 1))
    ticket = answer["uploads"][sha]  # type: ignore[index]
    assert httpx2.put(ticket["url"], content=b"z" * (LIMIT + 1)).status_code == 200
    response = claim(sha, ticket["key"])
    assert response.status_code == 400, response.text
    assert f"{LIMIT}-byte limit" in response.json()["error"]["message"]
    # Shorter than declared, then the client goes away: the store keeps nothing to claim.
    body = b"y" * 100
    sha, answer = offer(body)
    ticket = answer["uploads"][sha]  # type: ignore[index]
    parts = urlsplit(ticket["url"])
    target = f"{parts.path}?{parts.query}".encode()
    head = b"PUT " + target + b" HTTP/1.1\r\nHost: " + parts.netloc.encode()
    with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=20) as sock:
        sock.sendall(head + b"\r\nContent-Length: 200\r\n\r\n" + body[:10])
        time.sleep(0.2)
    response = claim(sha, ticket["key"])
    assert response.status_code == 400 and "upload it" in response.text, response.text
    # Longer than declared: the store keeps the declared part, which is not the bytes named.
    raw = _raw(ticket["url"], head + b"\r\nContent-Length: 50\r\nConnection: close\r\n\r\n"
               + body)  # fmt: skip
    assert _status(raw) == 200
    response = claim(sha, ticket["key"])
    assert response.status_code == 422 and response.json()["error"]["code"] == "integrity_error"
    # Other bytes than named, and keys the server did not sign for this file.
    sha, answer = offer(b"named")
    ticket = answer["uploads"][sha]  # type: ignore[index]
    assert httpx2.put(ticket["url"], content=b"other").status_code == 200
    assert claim(sha, ticket["key"]).status_code == 422
    for key in (ticket["key"], f"{ticket['key']}/../x", "../" + ticket["key"], "", "a\x00b"):
        assert claim(sha, key).status_code == 400, key
    time.sleep(0.5)  # the abandoned PUT is over
    assert stored_state(hostile) == before


def test_a_slow_client_gets_408_while_others_are_served(
    hostile: ServedRegistry, tmp_path: Path
) -> None:
    before = stored_state(hostile)
    token = hostile.tokens["writer"].encode()
    outcome: dict[str, bytes] = {}

    def trickle() -> None:
        parts = urlsplit(hostile.url)
        with socket.create_connection((parts.hostname or "", parts.port or 0), timeout=30) as s:
            s.sendall(
                b"POST " + API.encode() + b"/evals HTTP/1.1\r\nHost: x\r\n"
                b"Authorization: Bearer " + token + b"\r\nContent-Type: application/json\r\n"
                b"Content-Length: 64\r\n\r\n"
            )
            try:
                for byte in b'{"ref": "x@1", "scores"':
                    s.sendall(bytes([byte]))
                    time.sleep(1.0)  # one byte a second
            except OSError:
                pass
            outcome["response"] = s.recv(65536)

    thread = threading.Thread(target=trickle)
    thread.start()
    # Meanwhile everyone else is served at once.
    reader = Registry.open(hostile.url, token=hostile.tokens["reader"])
    for _ in range(5):
        started = time.monotonic()
        reader.list()
        assert time.monotonic() - started < 2
        assert httpx2.get(f"{hostile.url}/healthz").status_code == 200
        time.sleep(0.2)
    reader.close()
    thread.join(60)
    assert _status(outcome["response"]) == 408
    assert stored_state(hostile) == before


def test_the_server_still_works_after_all_that(hostile: ServedRegistry, tmp_path: Path) -> None:
    reg = Registry.open(hostile.url, token=hostile.tokens["writer"])
    result = reg.push(write_adapter(tmp_path / "after-lora", seed=9))
    assert result.created and reg.verify(result.version.ref).ok
    reg.close()


def test_the_server_runs_on_httptools_and_uvloop() -> None:
    """The server extra brings the fast parser and loop, so every hostile case above ran
    against httptools on uvloop, the pair ``adapters server`` picks when installed."""
    from registry.server.run import protocols

    assert protocols() == ("httptools", "uvloop")
