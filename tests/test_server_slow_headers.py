"""Connections that never finish a request's headers: answered 408 and closed after the
server's ``--body-timeout``, so that many of them cannot hold its file descriptors, while
keep-alive clients and requests slower than that deadline are served as before."""

from __future__ import annotations

import hashlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from support.server import ServedRegistry, served_registry

API = "/api/v1"
DEADLINE = 1.5


@pytest.fixture(scope="module")
def slow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedRegistry]:
    root = tmp_path_factory.mktemp("slow")
    args = ("--body-timeout", str(DEADLINE))
    with served_registry(root / "home", f"sqlite:///{root / 'c.db'}", args) as running:
        yield running


def _connect(served: ServedRegistry) -> socket.socket:
    parts = urlsplit(served.url)
    return socket.create_connection((parts.hostname or "", parts.port or 0), timeout=10)


def _answer(sock: socket.socket) -> bytes:
    """What the server sent until it closed the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_connections_that_never_finish_their_headers_are_closed(slow: ServedRegistry) -> None:
    silent = [_connect(slow) for _ in range(20)]
    partial = [_connect(slow) for _ in range(20)]
    for sock in partial:
        sock.sendall(b"GET " + API.encode() + b"/versions HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    stop = threading.Event()

    def trickle(sock: socket.socket) -> None:
        try:
            while not stop.is_set():
                sock.sendall(b"X")  # a header byte now and then, never the end
                time.sleep(0.3)
        except OSError:
            pass

    threads = [threading.Thread(target=trickle, args=(s,)) for s in partial]
    for thread in threads:
        thread.start()
    # Meanwhile everyone else is served at once.
    assert httpx2.get(f"{slow.url}/healthz").status_code == 200
    answers = [_answer(s) for s in silent + partial]
    elapsed = time.monotonic() - started
    stop.set()
    for thread in threads:
        thread.join()
    for sock in silent + partial:
        sock.close()
    assert all(a.startswith(b"HTTP/1.1 408 ") for a in answers), set(answers)
    assert DEADLINE - 0.5 < elapsed < DEADLINE + 5


def test_keep_alive_clients_and_slow_requests_are_served(slow: ServedRegistry) -> None:
    auth = {"Authorization": f"Bearer {slow.tokens['writer']}"}
    with httpx2.Client(base_url=slow.url, headers=auth, timeout=30) as http:
        # One connection, used again across more than the deadline.
        for _ in range(4):
            assert http.get(f"{API}/versions").status_code == 200
            time.sleep(DEADLINE / 2)
        # A body that keeps arriving for longer than the deadline, each part in time.
        data = b"x" * 40_000
        sha = hashlib.sha256(data).hexdigest()

        def parts() -> Iterator[bytes]:
            for start in range(0, len(data), 10_000):
                time.sleep(DEADLINE / 2)
                yield data[start : start + 10_000]

        response = http.put(f"{API}/uploads/{sha}", content=parts(),
                            headers={"Content-Length": str(len(data))})  # fmt: skip
        assert response.status_code == 201, response.text


def test_the_deadline_holds_on_both_http_implementations(tmp_path: Path) -> None:
    """uvicorn's h11 protocol as well as httptools (the server takes whichever is
    installed): the deadline wraps each, in a server on this process's event loop."""
    import asyncio

    import uvicorn

    from registry.server.header_timeout import protocol_class

    async def app(scope: dict, receive: object, send: object) -> None:  # type: ignore[type-arg]
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 200, "headers": []})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"ok"})  # type: ignore[operator]

    for http in ("h11", "httptools"):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error",
                                http=protocol_class(http, 0.5), lifespan="off")  # fmt: skip
        server = uvicorn.Server(config)
        thread = threading.Thread(target=asyncio.run, args=(server.serve(),))
        thread.start()
        try:
            while not server.started:
                time.sleep(0.05)
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
                assert _answer(sock).startswith(b"HTTP/1.1 408 "), http
            assert httpx2.get(f"http://127.0.0.1:{port}/").text == "ok"
        finally:
            server.should_exit = True
            thread.join()
