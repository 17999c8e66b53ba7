"""A real ``adapters server`` process on 127.0.0.1 for tests: started on a free port,
stopped (SIGTERM, then kill) when the test ends."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx2

if TYPE_CHECKING:
    from registry import Registry

ROOT = Path(__file__).resolve().parents[2]


def stage_uploads(http: httpx2.Client, directory: Path) -> dict[str, str]:
    """``PUT /uploads/SHA256`` of every file of ``directory`` (top level, in name order);
    the ``files`` a ``POST /push`` names them by."""
    files = {}
    for path in sorted(directory.iterdir()):
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        http.put(f"/api/v1/uploads/{sha}", content=data).raise_for_status()
        files[path.name] = sha
    return files


def bundle_parts(directory: Path, name: str) -> tuple[bytes, bytes]:
    """A ``POST /push/bundle`` of every file of ``directory`` (top level, in name order)
    as version ``name``: its JSON header and the files' bytes after it."""
    files = {p.name: p.read_bytes() for p in sorted(directory.iterdir())}
    header = json.dumps({
        "push": {"files": {k: hashlib.sha256(v).hexdigest() for k, v in files.items()},
                 "name": name},
        "sizes": {k: len(v) for k, v in files.items()},
    }).encode()  # fmt: skip
    return header, b"".join(files.values())


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def access_log(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


@contextmanager
def running_server(
    home: Path,
    env: Mapping[str, str] | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[RunningServer]:
    port = free_port()
    log = home.parent / f"server-{port}.log"
    environment = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "registry.cli", "--registry", str(home), "server",
             "--port", str(port), *args],
            env=environment, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    server = RunningServer(f"http://127.0.0.1:{port}", process, log)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the server exited: {log.read_text()}")
            try:
                if httpx2.get(f"{server.url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start: {log.read_text()}")
            time.sleep(0.1)
        yield server
    finally:
        server.stop()


def new_home(home: Path, database_url: str, blob_url: str | None = None) -> Registry:
    """A new registry at ``home`` on ``database_url``, its blobs at ``blob_url`` (named in
    its ``registry.json``, so that every later open of ``home`` finds them) or local."""
    from registry import Registry

    Registry.open(home, create=True, database_url=database_url).close()
    if blob_url is not None:
        marker = home / "registry.json"
        settings = json.loads(marker.read_text())
        marker.write_text(json.dumps({**settings, "blob_url": blob_url}) + "\n")
    return Registry.open(home, database_url=database_url)


@dataclass
class ServedRegistry:
    """A server over a registry home of its own, with one token per role."""

    server: RunningServer
    home: Path
    database_url: str
    tokens: dict[str, str]
    backend: str = "sqlite+local"
    blob_url: str | None = None  # object storage; None: local blobs in the home

    @property
    def url(self) -> str:
        return self.server.url


@contextmanager
def served_registry(
    home: Path,
    database_url: str,
    args: tuple[str, ...] = (),
    blob_url: str | None = None,
    backend: str = "sqlite+local",
) -> Iterator[ServedRegistry]:
    """A new registry at ``home`` on ``database_url``, tokens ``reader``, ``writer``,
    ``maintainer``, ``admin`` (and ``team-writer``, ``team-maintainer`` limited to the
    namespace ``team``), served on a free port. With ``blob_url`` its blobs are there,
    named in its ``registry.json`` so that local opens of ``home`` find them too (the
    object store's credentials come from the environment)."""
    local = new_home(home, database_url, blob_url)
    try:
        tokens = {
            role: local.create_token(role, role).secret
            for role in ("reader", "writer", "maintainer", "admin")
        }
        for role in ("reader", "writer", "maintainer", "admin"):
            tokens[f"team-{role}"] = local.create_token(
                f"team-{role}", role, namespace="team"
            ).secret
    finally:
        local.close()
    with running_server(home, {"ADAPTERS_DATABASE_URL": database_url}, args) as server:
        yield ServedRegistry(server, home, database_url, tokens, backend, blob_url)
