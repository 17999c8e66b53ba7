"""A URL that answers 200 with something other than the registry's JSON (a proxy's
login page, a web site): every remote call is a one-line ``ServerError``, no traceback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.handmade import write_adapter

from registry import Registry
from registry.cli.main import main
from registry.errors import ServerError


class _Page(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        body = b"<html><body>Please sign in</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_every_call_is_one_line(page: str, tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "adapter", seed=81)
    calls = [
        lambda r: r.list(),
        lambda r: r.get("a@1"),
        lambda r: r.log(),
        lambda r: r.set_alias("a@1", "prod"),
        lambda r: r.push(directory, name="a"),
    ]
    with Registry.open(page, token="t") as remote:
        for call in calls:
            with pytest.raises(ServerError, match="not the registry's JSON") as caught:
                call(remote)
            assert "\n" not in str(caught.value) and "text/html" in str(caught.value)


def test_the_cli_says_so(page: str) -> None:
    result = CliRunner().invoke(main, ["--registry", page, "list"])
    assert result.exit_code == 1
    assert result.output.strip().startswith("error: ") and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_server_not_listening_is_one_line_saying_what_to_check() -> None:
    from support.server import free_port

    result = CliRunner().invoke(main, ["--registry", f"http://127.0.0.1:{free_port()}", "list"])
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "check the URL and that the server is running" in result.output
