"""Pushes to a server whose blobs are on S3 go straight to the store through pre-signed
URLs, and the server hashes what arrived before it counts; with local blobs the client
streams through the server as before. Against a real server process and SeaweedFS."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import httpx2
import pytest
from conftest import use_s3
from support.handmade import write_lora
from support.s3_server import S3Server
from support.server import served_registry

from registry import Registry
from registry.remote import upload as remote_upload
from registry.remote.wire import API
from registry.store.object_blobs import ObjectBlobStore


def requests(access_log: str) -> list[tuple[str, str]]:
    lines = [json.loads(line) for line in access_log.splitlines() if line.startswith("{")]
    return [(line["method"], line["path"]) for line in lines if "method" in line]


def test_push_uploads_straight_to_s3_and_the_server_checks_the_bytes(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = use_s3(s3_server, monkeypatch)
    monkeypatch.setattr(remote_upload, "BUNDLE_BYTES", 0)  # small pushes go in one request
    source = write_lora(tmp_path / "a", 1)
    client_cache = tmp_path / "remote-cache"
    monkeypatch.setenv("ADAPTERS_CACHE_DIR", str(tmp_path / "server-cache"))  # the server's
    with served_registry(tmp_path / "home", f"sqlite:///{tmp_path / 'c.db'}") as served:
        monkeypatch.setenv("ADAPTERS_CACHE_DIR", str(client_cache))
        monkeypatch.delenv("ADAPTERS_BLOB_URL")  # the client's own cache is local
        client = Registry.open(served.url, token=served.tokens["writer"])
        pushed = client.push(source, name="direct")
        log = requests(served.server.access_log())
        assert ("POST", f"{API}/uploads/presign") in log
        assert any(path.endswith("/staged") for _m, path in log)
        assert not [p for m, p in log if m == "PUT"]  # no bytes through the server
        assert client.verify(pushed.version.ref).ok
        exported = client.export("direct", tmp_path / "out").directory
        for entry in pushed.version.files:
            data = (exported / entry.path).read_bytes()
            assert hashlib.sha256(data).hexdigest() == entry.sha256

        # A client that uploads other bytes than it named: refused, nothing stored.
        headers = {"Authorization": f"Bearer {served.tokens['writer']}"}
        claimed = hashlib.sha256(b"what I say I send").hexdigest()
        offer = httpx2.post(
            f"{served.url}{API}/uploads/presign", json={"files": [claimed]}, headers=headers
        ).json()
        assert offer["direct"] is True
        ticket = offer["uploads"][claimed]
        assert "Bearer" not in ticket["url"] and "/sha256/" not in ticket["url"]
        assert httpx2.put(ticket["url"], content=b"something else").status_code == 200
        refused = httpx2.post(
            f"{served.url}{API}/uploads/{claimed}/staged",
            json={"key": ticket["key"]},
            headers=headers,
        )
        assert refused.status_code == 422, refused.text
        assert "do not hash" in refused.json()["error"]["message"]
        forged = httpx2.post(
            f"{served.url}{API}/uploads/{claimed}/staged",
            json={"key": f"{ticket['key'].split('/incoming/')[0]}/sha256/ab/{'c' * 62}"},
            headers=headers,
        )
        assert forged.status_code == 400, forged.text
    monkeypatch.setenv("ADAPTERS_BLOB_URL", url)
    local = Registry.open(tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'c.db'}")
    blobs = local.blobs
    assert isinstance(blobs, ObjectBlobStore)
    assert not blobs.exists(claimed)
    assert not list((tmp_path / "home" / "tmp" / "uploads").glob(claimed + "*"))
    assert set(blobs.iter_digests()) == {entry.sha256 for entry in pushed.version.files}
    local.close()


def test_push_streams_through_a_server_with_local_blobs(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(remote_upload, "BUNDLE_BYTES", 0)  # small pushes go in one request
    with served_registry(tmp_path / "home", f"sqlite:///{tmp_path / 'c.db'}") as served:
        client = Registry.open(served.url, token=served.tokens["writer"])
        pushed = client.push(write_lora(tmp_path / "a", 2), name="through")
        assert client.verify(pushed.version.ref).ok
        log = requests(served.server.access_log())
        assert ("POST", f"{API}/uploads/presign") in log
        assert [p for m, p in log if m == "PUT"]  # fell back to streaming through the server


def test_gc_removes_unclaimed_direct_uploads_once_stale(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path
) -> None:
    from datetime import timedelta

    import obstore

    from registry.store import direct_uploads, gc

    use_s3(s3_server, monkeypatch)
    reg = Registry.open(hermetic_env, create=True)
    blobs = reg.blobs
    assert isinstance(blobs, ObjectBlobStore)
    (ticket,) = direct_uploads.sign_uploads(blobs, [hashlib.sha256(b"never claimed").hexdigest()])
    assert httpx2.put(ticket.url, content=b"never claimed").status_code == 200
    assert reg.gc().uploads == 0  # young: a client may be about to claim it
    monkeypatch.setattr(gc, "LEASE_EXPIRY", timedelta(0))
    assert reg.gc(dry_run=True).uploads == 1
    assert reg.gc().uploads == 1
    with pytest.raises(FileNotFoundError):
        obstore.head(blobs.store, ticket.key)
    reg.close()


@pytest.mark.parametrize("server_says_when", [True, False], ids=["renewed", "refused-then-renewed"])
def test_a_push_outlasting_its_upload_urls_asks_for_fresh_ones(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server_says_when: bool
) -> None:
    url = use_s3(s3_server, monkeypatch)
    monkeypatch.setenv("ADAPTERS_UPLOAD_URL_SECONDS", "2")  # the server's URLs: 2 s
    monkeypatch.setattr(remote_upload, "BUNDLE_BYTES", 0)
    done = remote_upload._Tickets.done

    def slowly(tickets: remote_upload._Tickets, digest: str) -> None:
        done(tickets, digest)
        time.sleep(2.5)  # the next file's URL has expired by now

    monkeypatch.setattr(remote_upload._Tickets, "done", slowly)
    if not server_says_when:  # as from a server that does not say how long URLs live
        ask = remote_upload._Tickets._ask

        def unaware(tickets: remote_upload._Tickets, digests: list[str]) -> bool:
            answer = ask(tickets, digests)
            tickets._renew_at = float("inf")
            return answer

        monkeypatch.setattr(remote_upload._Tickets, "_ask", unaware)
    with served_registry(tmp_path / "home", f"sqlite:///{tmp_path / 'c.db'}", blob_url=url) as s:
        monkeypatch.delenv("ADAPTERS_BLOB_URL")
        client = Registry.open(s.url, token=s.tokens["writer"])
        pushed = client.push(write_lora(tmp_path / "a", 5), name="slow")
        assert client.verify(pushed.version.ref).ok
        log = requests(s.server.access_log())
        assert log.count(("POST", f"{API}/uploads/presign")) == 2
        assert not [p for m, p in log if m == "PUT"]  # still straight to the store
        client.close()


def test_the_upload_url_lifetime_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    from registry.errors import ArgumentError
    from registry.store.direct_uploads import url_lifetime

    assert url_lifetime() == timedelta(hours=1)
    monkeypatch.setenv("ADAPTERS_UPLOAD_URL_SECONDS", "600")
    assert url_lifetime() == timedelta(minutes=10)
    for bad in ("0", "-5", "soon", str(8 * 24 * 3600)):
        monkeypatch.setenv("ADAPTERS_UPLOAD_URL_SECONDS", bad)
        with pytest.raises(ArgumentError, match=r"ADAPTERS_UPLOAD_URL_SECONDS=.* fix or unset it"):
            url_lifetime()


def test_a_server_with_a_bad_upload_url_lifetime_does_not_start(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from support.server import ROOT, free_port

    Registry.open(tmp_path / "home", create=True).close()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ADAPTERS_UPLOAD_URL_SECONDS": "forever"}
    done = subprocess.run(
        [sys.executable, "-m", "registry.cli", "--registry", str(tmp_path / "home"), "server",
         "--port", str(free_port())],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ADAPTERS_UPLOAD_URL_SECONDS=forever is not a number")
