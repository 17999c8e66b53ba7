"""What differs between the server backends, on each of them (support/server_matrix.py):
a large push goes straight to object storage through pre-signed URLs or streams through
the server, and the server's verify re-hashes the stored bytes wherever they are."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
from support.handmade import write_lora
from support.server import ServedRegistry

from registry import Registry
from registry.remote import upload as remote_upload
from registry.store.blobs import BlobStore
from registry.store.object_blobs import ObjectBlobStore


def _requests(served: ServedRegistry) -> list[tuple[str, str]]:
    lines = [json.loads(line) for line in served.server.access_log().splitlines()
             if line.startswith("{")]  # fmt: skip
    return [(line["method"], line["path"]) for line in lines if "method" in line]


def _local(served: ServedRegistry) -> Registry:
    return Registry.open(served.home, database_url=served.database_url)


def test_a_large_push_goes_the_way_the_blob_store_allows(
    served: ServedRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(remote_upload, "BUNDLE_BYTES", 0)  # file by file, as a large push
    client = Registry.open(served.url, token=served.tokens["writer"])
    name = f"large-{os.urandom(4).hex()}"
    before = len(_requests(served))
    pushed = client.push(write_lora(tmp_path / "a", 3), name=name)
    log = _requests(served)[before:]
    puts = [path for method, path in log if method == "PUT"]
    staged = [path for method, path in log if path.endswith("/staged")]
    if served.backend.endswith("+s3"):
        assert staged and not puts  # the bytes went straight to the object store
    else:
        assert puts and not staged  # streamed through the server
    assert client.verify(pushed.version.ref).ok
    exported = client.export(pushed.version.ref, tmp_path / "out").directory
    for entry in pushed.version.files:
        assert hashlib.sha256((exported / entry.path).read_bytes()).hexdigest() == entry.sha256
    with _local(served) as local:
        assert local.verify(pushed.version.ref).ok
        assert {e.sha256 for e in pushed.version.files} <= set(local.blobs.iter_digests())
    client.close()


def test_the_server_re_hashes_what_it_stores(served: ServedRegistry, tmp_path: Path) -> None:
    client = Registry.open(served.url, token=served.tokens["writer"])
    name = f"rehash-{os.urandom(4).hex()}"
    pushed = client.push(write_lora(tmp_path / "a", 4), name=name)
    assert client.verify(pushed.version.ref).ok
    entry = next(e for e in pushed.version.files if e.path.endswith(".safetensors"))
    with _local(served) as local:
        _damage(local, entry.sha256)
    report = client.verify(pushed.version.ref)
    assert not report.ok, report
    assert any(entry.path in check.name or entry.path in check.detail for check in report.failures)
    client.close()


def _damage(local: Registry, sha256: str) -> None:
    """Flip the stored blob's first byte behind the registry's back."""
    blobs = local.blobs
    if isinstance(blobs, ObjectBlobStore):
        import obstore

        data = bytearray(obstore.get(blobs.store, blobs.key(sha256)).bytes())
        data[0] ^= 0xFF
        obstore.put(blobs.store, blobs.key(sha256), bytes(data))
        return
    assert isinstance(blobs, BlobStore)
    path = blobs.path(sha256)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))



def test_gc_beside_pushes_loses_nothing(
    served: ServedRegistry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # File by file: on S3 the blobs land before the push that claims them is recorded.
    monkeypatch.setattr(remote_upload, "BUNDLE_BYTES", 0)
    name = f"gc-{os.urandom(4).hex()}"
    sources = [write_lora(tmp_path / f"a{i}", 20 + i) for i in range(5)]
    pushed: list[str] = []
    failed: list[BaseException] = []

    def push_all() -> None:
        try:
            with Registry.open(served.url, token=served.tokens["writer"]) as writer:
                pushed.extend(writer.push(s, name=name).version.ref for s in sources)
        except BaseException as exc:  # reported by the main thread
            failed.append(exc)

    pusher = threading.Thread(target=push_all)
    with Registry.open(served.url, token=served.tokens["admin"]) as admin:
        pusher.start()
        runs = 0
        while pusher.is_alive() or runs == 0:
            admin.gc()
            runs += 1
        pusher.join()
        assert not failed, failed
        assert admin.gc().blobs == ()  # every blob pushed is referenced
        for ref in pushed:
            assert admin.verify(ref).ok, ref
    assert len(pushed) == len(sources)
