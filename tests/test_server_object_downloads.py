"""Blob downloads from a server whose blobs are on object storage: fetched into the
read-through cache on a worker thread (a slow store holds up no other request), and a
blob the store lost is a one-line 422 that names neither the bucket nor its URL."""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from conftest import use_s3
from support.handmade import write_adapter
from support.server import running_server
from support.tcp_gate import TcpGate

from registry import Registry

WEIGHTS = "adapter_model.safetensors"


@pytest.fixture
def gated_s3(
    tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> tuple[TcpGate, str]:
    """S3 blobs reached through a gate a test can stall: (the gate, the blob URL)."""
    s3 = request.getfixturevalue("s3_server")
    url = use_s3(s3, monkeypatch)
    endpoint = urlsplit(s3.endpoint)
    gate = TcpGate((endpoint.hostname or "127.0.0.1", endpoint.port or 80))
    request.addfinalizer(gate.close)
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{gate.port}")
    monkeypatch.setenv("ADAPTERS_CACHE_DIR", str(tmp_path / "server-cache"))
    return gate, url


def _pushed(tmp_path: Path) -> tuple[Path, str, str, dict[str, str]]:
    """A home on the gated store holding one version, none of it in the server's cache:
    (home, ref, the sha256 of its weights, an admin's Authorization header)."""
    home = tmp_path / "home"
    with Registry.open(home, create=True) as local:
        version = local.push(write_adapter(tmp_path / "a", seed=81), name="obj").version
        token = local.create_token("admin", "admin").secret
    shutil.rmtree(tmp_path / "server-cache", ignore_errors=True)
    sha = next(f.sha256 for f in version.files if f.path == WEIGHTS)
    return home, version.ref, sha, {"Authorization": f"Bearer {token}"}


def test_a_blob_fetched_from_a_slow_store_holds_up_no_other_request(
    tmp_path: Path, gated_s3: tuple[TcpGate, str]
) -> None:
    gate, _url = gated_s3
    home, ref, sha, auth = _pushed(tmp_path)
    expected = (tmp_path / "a" / WEIGHTS).read_bytes()
    with running_server(home) as server:
        assert httpx2.get(f"{server.url}/api/v1/resolve", params={"ref": ref},
                          headers=auth).status_code == 200  # fmt: skip
        downloaded: list[httpx2.Response] = []
        gate.stall()
        fetch = threading.Thread(target=lambda: downloaded.append(httpx2.get(
            f"{server.url}/api/v1/blobs/{sha}", params={"ref": ref}, headers=auth, timeout=60,
        )))  # fmt: skip
        fetch.start()
        time.sleep(1.0)  # the server is waiting on the store now
        assert not downloaded
        started = time.monotonic()
        health = httpx2.get(f"{server.url}/healthz", timeout=30)
        resolved = httpx2.get(f"{server.url}/api/v1/resolve", params={"ref": ref},
                              headers=auth, timeout=30)  # fmt: skip
        waited = time.monotonic() - started
        gate.resume()
        fetch.join(60)
    assert health.status_code == 200 and resolved.status_code == 200
    assert waited < 2, waited
    assert downloaded and downloaded[0].status_code == 200, downloaded
    assert downloaded[0].content == expected


def test_a_blob_the_store_lost_is_a_one_line_422_without_the_store_url(
    tmp_path: Path, gated_s3: tuple[TcpGate, str]
) -> None:
    _gate, url = gated_s3
    home, ref, sha, auth = _pushed(tmp_path)
    with Registry.open(home) as local:
        local.blobs.delete(sha)
    with running_server(home) as server:
        response = httpx2.get(f"{server.url}/api/v1/blobs/{sha}", params={"ref": ref},
                              headers=auth, timeout=60)  # fmt: skip
        log = server.access_log()
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "integrity_error" and "\n" not in error["message"]
    assert f"adapters verify {ref}" in error["message"]
    bucket = urlsplit(url).netloc
    assert bucket not in response.text and url not in response.text
    assert "missing" in log  # the store's own wording goes to the log
    cached = (tmp_path / "server-cache").rglob(sha + "*")
    assert not [path for path in cached if path.parent.name != "locks"]  # no bytes kept
