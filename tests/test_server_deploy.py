"""docs/server.md's deployment, run as written: the registry and its first token made
with ``--registry``, the server started with the command line of the systemd unit, and
TLS through uvicorn's own options, reached by the client trusting a self-signed cert."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest
from support.server import ROOT, free_port, running_server

from registry import Registry, ServerError


def _adapters(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    environment.pop("ADAPTERS_HOME", None)
    return subprocess.run(
        [sys.executable, "-m", "registry.cli", *args],
        capture_output=True, text=True, env=environment, timeout=120, cwd=cwd,
    )  # fmt: skip


def test_the_registry_and_its_first_token_made_as_documented(tmp_path: Path) -> None:
    srv = tmp_path / "srv" / "adapters"
    made = _adapters("--registry", str(srv), "init", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (srv / "registry.json").is_file() and not (tmp_path / ".adapters").exists()
    created = _adapters("--registry", str(srv), "token", "create", "root", "--role", "admin",
                        cwd=tmp_path)  # fmt: skip
    assert created.returncode == 0, created.stderr
    with (
        running_server(srv, args=("--host", "127.0.0.1")) as server,
        Registry.open(server.url, token=created.stdout.strip()) as client,
    ):
        assert [t.name for t in client.tokens()] == ["root"]


def test_init_refuses_a_server_url(tmp_path: Path) -> None:
    refused = _adapters("--registry", "http://127.0.0.1:9/", "init", cwd=tmp_path)
    assert refused.returncode != 0
    assert "give a path, not a server URL" in refused.stderr
    assert list(tmp_path.iterdir()) == []


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@contextmanager
def _uvicorn_with_tls(home: Path, cert: Path, key: Path) -> Iterator[str]:
    """The command of docs/server.md's TLS section, on a free port."""
    port = free_port()
    log = home.parent / "uvicorn.log"
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "ADAPTERS_HOME": str(home)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--factory", "registry.server.asgi:app",
             "--host", "127.0.0.1", "--port", str(port), "--ssl-certfile", str(cert),
             "--ssl-keyfile", str(key), "--timeout-graceful-shutdown", "120",
             "--no-access-log"],
            env=environment, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            try:
                httpx2.get(f"{url}/healthz", verify=False, timeout=2)
                break
            except httpx2.HTTPError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def test_tls_through_uvicorns_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    with Registry.open(home, create=True) as local:
        token = local.create_token("tls", "reader").secret
    cert, key = _self_signed(tmp_path)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    with _uvicorn_with_tls(home, cert, key) as url:
        # Without the cert trusted the client refuses, and says how to trust it.
        with Registry.open(url, token=token) as untrusted, pytest.raises(ServerError) as refused:
            untrusted.list()
        assert "SSL_CERT_FILE" in str(refused.value)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        with Registry.open(url, token=token) as client:
            assert client.list() == []
        assert httpx2.get(f"{url}/readyz", verify=False).json() == {"status": "ready"}
