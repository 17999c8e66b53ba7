"""Faults on a real S3 server (SeaweedFS on 127.0.0.1): the server killed mid-upload and
mid-download, throttling replies (503 SlowDown, from a proxy in front of the server; on
Azurite too),
wrong credentials and a missing bucket. Each failure is one line; no version points at
an incomplete blob; nothing partial is left in the export target or the cache; the same
call completes once the server is back."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import use_object_store, use_s3
from support.azurite import AzuriteServer
from support.handmade import write_lora
from support.lifecycle import one_line_error, run
from support.processes import KillAfter
from support.s3_proxy import ThrottlingProxy
from support.s3_server import BUCKET, S3Server

from registry import Registry
from registry.errors import BlobStoreError
from registry.store import gc, object_blobs
from registry.store.hashing import sha256_file
from registry.store.object_blobs import ObjectBlobStore


@pytest.fixture
def own_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path
) -> Iterator[S3Server]:
    """A server of this test's own (it gets killed), with the registry's blobs on it."""
    server = S3Server(tmp_path / "s3").start()
    try:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("ADAPTERS_BLOB_RETRY_SECONDS", "2")
        monkeypatch.setenv("ADAPTERS_BLOB_URL", f"s3://{BUCKET}/faults")
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "s3", ignore_errors=True)


def big_lora(directory: Path) -> Path:
    return write_lora(directory, 1, r=64, hidden=32768)  # about 64 MiB of weights


def test_server_killed_mid_upload_then_push_again(
    own_server: S3Server, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(object_blobs, "SINGLE_PUT_LIMIT", 1 << 20)
    monkeypatch.setattr(object_blobs, "PART_SIZE", 5 << 20)
    monkeypatch.setattr(object_blobs, "PART_CONCURRENCY", 2)
    reg = Registry.open(hermetic_env, create=True)
    reg.push(write_lora(tmp_path / "small", 4), name="small")
    source = big_lora(tmp_path / "big")
    weights = sha256_file(source / "adapter_model.safetensors")
    with pytest.raises(BlobStoreError) as caught:
        reg.push(source, name="big", progress=KillAfter(own_server, 16 << 20))
    assert "\n" not in str(caught.value) and "retry" in str(caught.value)
    own_server.start()
    # No version of "big", so none points at the incomplete blob.
    assert [v.name for v in reg.list()] == ["small"]
    assert not reg.blobs.exists(weights)  # the upload never completed
    monkeypatch.setattr(gc, "LEASE_EXPIRY", timedelta(0))
    reg.gc()  # aborts what the failed push left open on the server
    import boto3

    client = boto3.client("s3", endpoint_url=own_server.endpoint, region_name="us-east-1")
    assert not client.list_multipart_uploads(Bucket=BUCKET, Prefix="faults").get("Uploads")
    pushed = reg.push(source, name="big")
    assert reg.blobs.exists(weights) and reg.verify(pushed.version.ref).ok
    reg.close()


def test_server_killed_mid_download_then_export_again(
    own_server: S3Server, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(object_blobs, "READ_CHUNK", 1 << 20)  # little in flight when killed
    reg = Registry.open(hermetic_env, create=True)
    pushed = reg.push(big_lora(tmp_path / "big"), name="big")
    blobs = reg.blobs
    assert isinstance(blobs, ObjectBlobStore)
    out = tmp_path / "out"
    with pytest.raises(BlobStoreError) as caught:
        reg.export("big", out, progress=KillAfter(own_server, 2 << 20))
    assert "\n" not in str(caught.value)
    assert not out.exists() and list(tmp_path.glob(".out.export-*")) == []
    for entry in pushed.version.files:
        assert not blobs.cache.path(entry.sha256).exists() or entry.size < (1 << 20)
    assert list((blobs.cache.root / "staging").iterdir()) == []
    own_server.start()
    reg.export("big", out)
    for entry in pushed.version.files:
        assert hashlib.sha256((out / entry.path).read_bytes()).hexdigest() == entry.sha256
        assert blobs.check_local(entry.sha256, entry.size) is None
    reg.close()


@pytest.mark.parametrize("backend", ["s3", "azure"])
def test_throttling_replies_are_retried(
    backend: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    hermetic_env: Path,
    tmp_path: Path,
) -> None:
    use_object_store(request, backend, monkeypatch)
    server: S3Server | AzuriteServer = request.getfixturevalue(
        "s3_server" if backend == "s3" else "azurite_server"
    )
    monkeypatch.setattr(object_blobs, "SINGLE_PUT_LIMIT", 1 << 20)
    monkeypatch.setattr(object_blobs, "PART_SIZE", 5 << 20)
    source = write_lora(tmp_path / "a", 2, r=32, hidden=16384)  # 16 MiB: multipart
    with ThrottlingProxy(server.endpoint) as proxy:
        for key, value in server.through(proxy.endpoint).items():
            monkeypatch.setenv(key, value)
        reg = Registry.open(hermetic_env, create=True)
        pushed = reg.push(source, name="x")
        assert reg.verify("x").ok
        out = reg.export("x", tmp_path / "out").directory
        reg.close()
    for entry in pushed.version.files:
        assert hashlib.sha256((out / entry.path).read_bytes()).hexdigest() == entry.sha256
    assert proxy.throttled >= 5 and proxy.forwarded >= proxy.throttled  # each kind refused once


def test_wrong_credential_and_missing_bucket_on_push(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    use_s3(s3_server, monkeypatch)
    source = write_lora(tmp_path / "a", 3)
    Registry.open(hermetic_env, create=True).close()
    real_secret = s3_server.env["AWS_SECRET_ACCESS_KEY"]
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    refused = run("push", str(source), "--name", "x")
    assert refused.exit_code == 1 and one_line_error(refused), refused.output
    assert "refused the credentials" in refused.stderr
    assert run("list", "--json").stdout.strip() in ("[]", "")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", real_secret)
    # SeaweedFS creates a bucket on the first PUT of an admin identity, so a missing
    # bucket shows on the commands that list the store.
    monkeypatch.setenv("ADAPTERS_BLOB_URL", "s3://no-such-bucket-15b/p")
    missing = run("gc")
    assert missing.exit_code == 1 and one_line_error(missing), missing.output
    assert "does not exist" in missing.stderr
