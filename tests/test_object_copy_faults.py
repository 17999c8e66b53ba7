"""`blobs copy` and doctor when the S3 server (SeaweedFS on 127.0.0.1) dies: a copy
killed midway either way leaves only whole, hash-checked blobs in its target and no temp
files, and the same command resumes where it stopped; doctor says so in one line and
exits 1."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.lifecycle import run
from support.processes import KillAfter
from support.s3_server import BUCKET, S3Server

from registry import Registry
from registry.errors import BlobStoreError
from registry.store.blob_cache import BlobCache
from registry.store.blobs import BlobStore
from registry.store.object_blobs import ObjectBlobStore


@pytest.fixture
def own_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[S3Server]:
    """A server of this test's own (it gets killed)."""
    server = S3Server(tmp_path / "s3").start()
    try:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        monkeypatch.setenv("ADAPTERS_BLOB_RETRY_SECONDS", "2")
        monkeypatch.delenv("ADAPTERS_BLOB_URL", raising=False)
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "s3", ignore_errors=True)


def _fill(store: BlobStore, small: int, large: int) -> dict[str, int]:
    for i in range(small):
        store.put_bytes(f"small blob {i}".encode())
    for _ in range(large):
        store.put_bytes(os.urandom(12 * 1024**2))
    return dict(store.iter_sizes())


def _whole(store: ObjectBlobStore | BlobStore, expected: dict[str, int]) -> dict[str, int]:
    """What ``store`` holds, each blob checked against its name."""
    held = dict(store.iter_sizes())
    assert set(held) <= set(expected)
    for sha256, size in held.items():
        assert size == expected[sha256] and store.check(sha256, size) is None
    return held


def test_copy_to_s3_killed_midway_then_resumed(
    own_server: S3Server, hermetic_env: Path, tmp_path: Path
) -> None:
    reg = Registry.open(hermetic_env, create=True)
    assert isinstance(reg.blobs, BlobStore)
    expected = _fill(reg.blobs, 200, 3)
    url = f"s3://{BUCKET}/copy-up"
    with pytest.raises(BlobStoreError) as caught:
        reg.copy_blobs(None, url, progress=KillAfter(own_server, 20 * 1024**2))
    assert "\n" not in str(caught.value)
    assert [p for p in (hermetic_env / "tmp").iterdir() if p.name.startswith("copy-")] == []
    own_server.start()
    target = ObjectBlobStore(url, BlobCache(tmp_path / "cache"))
    held = _whole(target, expected)
    assert len(held) < len(expected)
    resumed = reg.copy_blobs(None, url)
    assert (resumed.copied, resumed.skipped) == (len(expected) - len(held), len(held))
    assert _whole(target, expected) == expected
    reg.close()


def test_copy_from_s3_killed_midway_then_resumed(
    own_server: S3Server, hermetic_env: Path, tmp_path: Path
) -> None:
    reg = Registry.open(hermetic_env, create=True)
    assert isinstance(reg.blobs, BlobStore)
    expected = _fill(reg.blobs, 150, 3)
    url = f"s3://{BUCKET}/copy-down"
    reg.copy_blobs(None, url)
    back = tmp_path / "back"
    with pytest.raises(BlobStoreError) as caught:
        reg.copy_blobs(url, str(back), progress=KillAfter(own_server, 20 * 1024**2))
    assert "\n" not in str(caught.value)
    local = BlobStore(back)
    held = _whole(local, expected)
    assert len(held) < len(expected) and list(local.staging_files()) == []
    own_server.start()
    resumed = reg.copy_blobs(url, str(back))
    assert (resumed.copied, resumed.skipped) == (len(expected) - len(held), len(held))
    assert _whole(local, expected) == expected
    reg.close()


def test_doctor_with_the_server_gone_is_one_line_and_exit_1(
    own_server: S3Server, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    from support.handmade import write_lora

    monkeypatch.setenv("ADAPTERS_BLOB_URL", f"s3://{BUCKET}/doctor")
    monkeypatch.setenv("ADAPTERS_BLOB_RETRY_SECONDS", "1")
    reg = Registry.open(hermetic_env, create=True)
    reg.push(write_lora(tmp_path / "a", 1), name="x")
    reg.close()
    own_server.kill()
    for args in (["doctor"], ["doctor", "--write-check"]):
        shown = run(*args)
        assert shown.exit_code == 1, shown.output
        errors = [line for line in shown.output.splitlines() if line.startswith("ERROR")]
        assert len(errors) == 1 and "[store]" in errors[0] and "reachable" in errors[0]
