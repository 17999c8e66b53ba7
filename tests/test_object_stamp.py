"""Uploads proven by the file's stamp instead of a second hash (store/file_stamp.py), on
real servers on 127.0.0.1 (SeaweedFS for S3, Azurite for Azure): a settled file goes up
without being hashed again, and a file that changes, is replaced or changed only just
now is hashed again or refused, with nothing stored and no multipart upload left open."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import obstore
import pytest
from conftest import use_s3
from support.handmade import write_lora
from support.s3_server import BUCKET, S3Server

from registry import Registry
from registry.errors import IntegrityError
from registry.store import file_stamp, object_blobs, object_transfer
from registry.store.blob_cache import BlobCache
from registry.store.file_stamp import FileStamp
from registry.store.object_blobs import ObjectBlobStore
from registry.store.prehash import BackgroundHashes

WEIGHTS = "adapter_model.safetensors"


@pytest.fixture
def obj_reg(object_url: str, hermetic_env: Path, small_parts: None) -> Iterator[Registry]:
    """A registry with its blobs on S3, then on Azure."""
    reg = Registry.open(hermetic_env, create=True)
    yield reg
    reg.close()


@pytest.fixture
def settled_now(monkeypatch: pytest.MonkeyPatch) -> None:
    """A file written before the push counts as settled (the tests cannot wait 60 s)."""
    monkeypatch.setattr(file_stamp, "SETTLED_SECONDS", 0)


@pytest.fixture
def readers(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Which kind of reader each large upload went through."""
    used: list[str] = []
    for name in ("CheckedReader", "StampedParts"):
        real = getattr(object_blobs, name)

        def counting(*args: Any, _real: Any = real, _name: str = name) -> Any:
            used.append(_name)
            return _real(*args)

        monkeypatch.setattr(object_blobs, name, counting)
    return used


def _no_uploads_left(request: pytest.FixtureRequest, store: ObjectBlobStore) -> None:
    if store.scheme != "s3":
        return  # Azure keeps uncommitted blocks out of sight and drops them after 7 days
    import boto3

    server: S3Server = request.getfixturevalue("s3_server")
    prefix = store.prefix
    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1")
    assert not client.list_multipart_uploads(Bucket=BUCKET, Prefix=prefix).get("Uploads")


def test_stamp_changes_with_every_kind_of_change(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"a" * 4096)
    old = path.stat()
    first = FileStamp.of(old)
    assert FileStamp.of(path.stat()) == first
    assert not first.settled(time.time_ns())  # just written: racy
    assert first.settled(time.time_ns() + file_stamp.SETTLED_SECONDS * 1_000_000_000)
    time.sleep(0.02)  # past the coarse clock's tick
    with open(path, "r+b") as handle:
        handle.write(b"b")  # same size
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))  # the mtime put back
    second = FileStamp.of(path.stat())
    assert second.mtime_ns == first.mtime_ns and second != first  # the ctime moved
    replacement = tmp_path / "g.bin"
    shutil.copy2(path, replacement)
    os.replace(replacement, path)
    assert FileStamp.of(path.stat()).inode != second.inode


def test_only_a_settled_file_unchanged_while_hashed_gets_a_stamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(os.urandom(3000))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    hashes = BackgroundHashes(tmp_path, 1000)
    try:
        found = hashes.known(path)
        assert found is not None and found.sha256 == digest and found.stamp is None  # racy
    finally:
        hashes.close()
    monkeypatch.setattr(file_stamp, "SETTLED_SECONDS", 0)
    hashes = BackgroundHashes(tmp_path, 1000)
    try:
        found = hashes.known(path)
        assert found is not None and found.stamp == FileStamp.of(path.stat())
        assert hashes.known(tmp_path / "gone") is None
    finally:
        hashes.close()


def test_a_settled_file_is_uploaded_without_a_second_hash(
    obj_reg: Registry, tmp_path: Path, settled_now: None, readers: list[str]
) -> None:
    source = write_lora(tmp_path / "a", 4, r=32, hidden=16384)
    pushed = obj_reg.push(source, name="x")
    assert readers == ["StampedParts"]
    assert obj_reg.verify("x").ok
    out = obj_reg.export("x", tmp_path / "out").directory
    assert (out / WEIGHTS).read_bytes() == (source / WEIGHTS).read_bytes()
    assert pushed.blobs_written == 2


def test_a_file_changed_just_before_the_push_is_hashed_again(
    obj_reg: Registry, tmp_path: Path, readers: list[str]
) -> None:
    source = write_lora(tmp_path / "a", 4, r=32, hidden=16384)  # just written: racy
    obj_reg.push(source, name="x")
    assert readers == ["CheckedReader"]
    assert obj_reg.verify("x").ok


def _write_in_place(path: Path) -> None:
    with open(path, "r+b") as handle:  # bytes the upload has not read yet
        handle.seek(-64, os.SEEK_END)
        handle.write(os.urandom(64))


def _write_then_restore_mtime(path: Path) -> None:
    before = path.stat()
    _write_in_place(path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))


def _append(path: Path) -> None:
    with open(path, "ab") as handle:
        handle.write(b"\0" * 16)


@pytest.mark.parametrize("change", [_write_in_place, _write_then_restore_mtime, _append])
def test_a_file_changed_during_a_stamped_upload_is_refused(
    obj_reg: Registry,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settled_now: None,
    readers: list[str],
    change: Any,
) -> None:
    source = write_lora(tmp_path / "a", 4, r=32, hidden=16384)
    weights = source / WEIGHTS
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    changed: list[bool] = []

    def change_once(name: str) -> None:
        if name == "object.uploading" and not changed:
            time.sleep(0.02)  # past the coarse clock's tick
            change(weights)
            changed.append(True)

    monkeypatch.setattr(object_transfer, "fault_point", change_once)
    with pytest.raises(IntegrityError, match="changed while it was being stored; push again"):
        obj_reg.push(source, name="x")
    assert readers == ["StampedParts"] and changed
    blobs = obj_reg.blobs
    assert isinstance(blobs, ObjectBlobStore)
    assert not blobs.exists(digest) and obj_reg.list() == []
    _no_uploads_left(request, blobs)


def test_a_file_replaced_after_its_hash_is_hashed_again(
    s3_server: S3Server,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    small_parts: None,
    settled_now: None,
    readers: list[str],
) -> None:
    store = ObjectBlobStore(use_s3(s3_server, monkeypatch), BlobCache(tmp_path / "cache"))
    source = tmp_path / "big"
    data = os.urandom(12 << 20)
    source.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    stamp = FileStamp.of(source.stat())
    replacement = tmp_path / "new"
    replacement.write_bytes(os.urandom(len(data)))  # same size, other bytes
    os.replace(replacement, source)
    with pytest.raises(IntegrityError, match="changed while it was being stored"):
        store.put_file(source, expected=digest, stamp=stamp)
    assert readers == ["CheckedReader"]  # another inode: the stamp was not trusted
    assert not store.exists(digest)
    _no_uploads_left(request, store)
    source.write_bytes(data)  # the same bytes again, as a rewritten file
    stored = store.put_file(source, expected=digest, stamp=stamp)
    assert readers == ["CheckedReader", "CheckedReader"]
    assert stored.created and store.check(digest, len(data)) is None


def test_a_blob_that_does_not_match_its_key_is_refused_on_every_read(
    obj_reg: Registry, tmp_path: Path
) -> None:
    """What a stamp could miss (file_stamp.py) ends here: a loud refusal, never a wrong
    adapter, whichever way the blob is read."""
    pushed = obj_reg.push(write_lora(tmp_path / "a", 4, r=32, hidden=16384), name="x")
    blobs = obj_reg.blobs
    assert isinstance(blobs, ObjectBlobStore)
    weights = next(f for f in pushed.version.files if f.role == "weights")
    obstore.put(blobs.store, blobs.key(weights.sha256), os.urandom(weights.size))
    shutil.rmtree(blobs.cache.root, ignore_errors=True)
    with pytest.raises(IntegrityError, match="hashes to"):
        blobs.path(weights.sha256)  # what load, merge and combine read
    assert not blobs.cache.path(weights.sha256).exists()
    with pytest.raises(IntegrityError, match="hashes to"):
        obj_reg.export("x", tmp_path / "out")
    report = obj_reg.verify("x")
    assert not report.ok and "hashes to" in str(report.failures[0].detail)
