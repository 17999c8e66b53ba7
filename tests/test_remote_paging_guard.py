"""A server (or a proxy in front of one) whose list cursors never end must not keep the
remote client asking forever: a repeated cursor, or a long run of empty pages that keep
pointing further, is a one-line ``ServerError``."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli.main import main
from registry.errors import ServerError


class _Endless(BaseHTTPRequestHandler):
    """Every list page is empty and points at a next one: the same cursor ("same") or a
    fresh one each time ("fresh")."""

    mode = "same"
    counter = itertools.count()

    def do_GET(self) -> None:
        self.server.requests += 1  # type: ignore[attr-defined]
        if self.server.requests > 500:  # type: ignore[attr-defined]
            body = {"items": [], "next_cursor": None}  # the test failed: end it anyway
        elif self.mode == "fresh":
            body = {"items": [], "next_cursor": f"c{next(self.counter)}"}
        else:
            body = {"items": [], "next_cursor": "Y3Vyc29y"}
        data = json.dumps({**body, "next_page_token": None}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(mode: str) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    handler = type("Handler", (_Endless,), {"mode": mode})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.requests = 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(params=["same", "fresh"])
def endless(request: pytest.FixtureRequest) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    yield from _serve(request.param)


@pytest.mark.parametrize(
    "call",
    [
        lambda r: r.list(),
        lambda r: r.log(),
        lambda r: r.tokens(),
        lambda r: r.bases(),
        lambda r: r.alias_history("x"),
    ],
    ids=["versions", "log", "tokens", "bases", "alias-history"],
)
def test_a_list_whose_cursors_never_end_is_refused(
    endless: tuple[str, ThreadingHTTPServer], call: object
) -> None:
    url, server = endless
    remote = Registry.open(url, token="t")
    try:
        with pytest.raises(ServerError, match=r"cursor|empty pages") as caught:
            call(remote)  # type: ignore[operator]
    finally:
        remote.close()
    assert "\n" not in str(caught.value)
    assert server.requests < 50  # type: ignore[attr-defined]


def test_the_cli_says_so_in_one_line() -> None:
    for url, server in _serve("same"):
        result = CliRunner().invoke(main, ["--registry", url, "list"])
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and "repeated a page cursor" in lines[0]
        assert server.requests == 2  # type: ignore[attr-defined]
