"""Large-blob transfers to and from a real S3 server (SeaweedFS on 127.0.0.1): parallel
ranged downloads that still refuse a corrupt blob, puts given their digest that upload
through the hashing reader alone, and push handing that digest down."""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import obstore
import pytest
from conftest import use_s3
from support.handmade import write_lora
from support.s3_server import BUCKET, S3Server

from registry import Registry
from registry.errors import BlobStoreError, IntegrityError, ValidationError
from registry.store import object_blobs, prehash
from registry.store.blob_cache import BlobCache
from registry.store.object_blobs import ObjectBlobStore
from registry.store.object_transfer import ranged_chunks
from registry.store.prehash import BackgroundHashes


@pytest.fixture
def s3_reg(
    s3_server: S3Server,
    monkeypatch: pytest.MonkeyPatch,
    hermetic_env: Path,
    small_parts: None,
) -> Iterator[Registry]:
    use_s3(s3_server, monkeypatch)
    reg = Registry.open(hermetic_env, create=True)
    yield reg
    reg.close()


def test_ranged_chunks_keep_order_bound_work_and_raise_in_turn() -> None:
    running = peak = 0
    lock = threading.Lock()

    def fetch(start: int, end: int) -> tuple[int, int]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01 if start % 3 else 0.03)  # ranges finish out of order
        with lock:
            running -= 1
        return start, end

    assert list(ranged_chunks(fetch, 25, 4, 3)) == [
        (0, 4), (4, 8), (8, 12), (12, 16), (16, 20), (20, 24), (24, 25)
    ]  # fmt: skip
    assert peak <= 3

    def failing(start: int, end: int) -> int:
        if start == 8:
            raise OSError("range 8 failed")
        return start

    got: list[int] = []
    with pytest.raises(OSError, match="range 8"):
        for start in ranged_chunks(failing, 40, 4, 2):
            got.append(start)
    assert got == [0, 4]


def test_ranged_export_of_a_corrupt_blob_leaves_nothing(s3_reg: Registry, tmp_path: Path) -> None:
    reg = s3_reg
    pushed = reg.push(write_lora(tmp_path / "a", 2, r=32, hidden=16384), name="x")
    blobs = reg.blobs
    assert isinstance(blobs, ObjectBlobStore)
    weights = next(f for f in pushed.version.files if f.role == "weights")
    assert weights.size > 8 * object_blobs.READ_CHUNK  # read as many ranges
    damaged = bytearray(os.urandom(weights.size))
    obstore.put(blobs.store, blobs.key(weights.sha256), bytes(damaged))  # same size, wrong bytes
    out = tmp_path / "out"
    with pytest.raises(IntegrityError, match="hashes to"):
        reg.export("x", out)
    assert not out.exists() and list(tmp_path.glob(".out.export-*")) == []
    assert not blobs.cache.path(weights.sha256).exists()
    assert list((blobs.cache.root / "staging").iterdir()) == []
    assert "hashes to" in str(blobs.check(weights.sha256, weights.size))


def test_ranged_export_matches_the_blob(
    s3_reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = s3_reg
    monkeypatch.setattr(object_blobs, "READ_CHUNK", (1 << 20) + 7)  # a short last range
    pushed = reg.push(write_lora(tmp_path / "a", 3, r=32, hidden=16384), name="x")
    out = reg.export("x", tmp_path / "out").directory
    for entry in pushed.version.files:
        data = (out / entry.path).read_bytes()
        assert len(data) == entry.size and hashlib.sha256(data).hexdigest() == entry.sha256


def test_put_with_a_wrong_known_digest_refuses_and_stores_nothing(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, small_parts: None
) -> None:
    url = use_s3(s3_server, monkeypatch)
    store = ObjectBlobStore(url, BlobCache(tmp_path / "cache"))
    source = tmp_path / "big"
    source.write_bytes(os.urandom(12 << 20))
    wrong = hashlib.sha256(b"something else").hexdigest()
    leased: list[str] = []
    with pytest.raises(IntegrityError, match="changed while it was being stored"):
        store.put_file(source, expected=wrong, before_commit=leased.append)
    assert leased == [wrong]  # leased before it looked, like every put
    assert not store.exists(wrong) and list(store.iter_digests()) == []
    import boto3  # the server's own view: the multipart upload was aborted

    client = boto3.client("s3", endpoint_url=s3_server.endpoint, region_name="us-east-1")
    assert not client.list_multipart_uploads(Bucket=BUCKET, Prefix=store.prefix).get("Uploads")
    right = hashlib.sha256(source.read_bytes()).hexdigest()
    stored = store.put_file(source, expected=right)
    assert stored.created and store.check(right, stored.size) is None


def test_push_hashes_large_files_once_beside_the_format_checks(
    s3_reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = s3_reg
    hashed: list[Path] = []
    real_hash = object_blobs.sha256_file

    def counting(path: Path) -> str:
        hashed.append(path)
        return real_hash(path)

    monkeypatch.setattr(object_blobs, "sha256_file", counting)
    source = write_lora(tmp_path / "a", 4, r=32, hidden=16384)
    pushed = reg.push(source, name="x")
    assert hashed == []  # the put had the digest: no pass before its upload
    assert reg.verify("x").ok
    again = reg.push(source, name="x")  # already stored: found under the known digest
    assert again.version.digest == pushed.version.digest and again.blobs_written == 0


def test_background_hashes_cover_large_files_only(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    big, small = tmp_path / "sub" / "big.bin", tmp_path / "small.json"
    big.write_bytes(os.urandom(3000))
    small.write_bytes(b"{}")
    hashes = BackgroundHashes(tmp_path, 1000)
    try:
        assert hashes.digest(big) == hashlib.sha256(big.read_bytes()).hexdigest()
        assert hashes.digest(small) is None and hashes.digest(tmp_path / "gone") is None
    finally:
        hashes.close()
    none = BackgroundHashes(tmp_path, None)
    assert none.digest(big) is None
    none.close()


@contextlib.contextmanager
def _files_limited_to(size: int) -> Iterator[None]:
    """Writes past ``size`` bytes fail (EFBIG), as on a full disk; for this process only."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # else the kernel kills us
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_a_failed_cache_write_leaves_nothing_and_says_so(s3_reg: Registry, tmp_path: Path) -> None:
    reg = s3_reg
    pushed = reg.push(write_lora(tmp_path / "a", 2, r=32, hidden=16384), name="x")
    blobs = reg.blobs
    assert isinstance(blobs, ObjectBlobStore)
    weights = next(f for f in pushed.version.files if f.role == "weights")
    threads = set(threading.enumerate())
    out = tmp_path / "out"
    with _files_limited_to(weights.size // 2), pytest.raises(BlobStoreError) as failed:
        reg.export("x", out)
    message = str(failed.value)
    assert "\n" not in message
    assert "File too large" in message and "adapter_model.safetensors" in message
    assert not out.exists() and list(tmp_path.glob(".out.export-*")) == []
    assert not blobs.cache.path(weights.sha256).exists()
    assert list((blobs.cache.root / "staging").iterdir()) == []
    deadline = time.monotonic() + 10
    while set(threading.enumerate()) - threads and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(threading.enumerate()) - threads == set()
    with _files_limited_to(weights.size // 2), pytest.raises(BlobStoreError, match="File too"):
        blobs.path(weights.sha256)  # a fill for a load, with no export beside it
    assert list((blobs.cache.root / "staging").iterdir()) == []
    reg.export("x", out)  # with room again, the same export completes
    assert hashlib.sha256((out / weights.path).read_bytes()).hexdigest() == weights.sha256


def test_a_push_failing_early_stops_its_hashing_and_leaves_no_temp(
    s3_reg: Registry, tmp_path: Path
) -> None:
    source = write_lora(tmp_path / "a", 4, r=32, hidden=16384)
    weights = source / "adapter_model.safetensors"
    weights.write_bytes(b"\0" * 8 + weights.read_bytes()[8:])  # a broken header
    threads = set(threading.enumerate())
    with pytest.raises(ValidationError, match="not valid JSON"):
        s3_reg.push(source, name="x")
    assert not [t for t in set(threading.enumerate()) - threads if t.name == "push-prehash"]
    assert list(s3_reg.store.tmp_dir.glob("push-*")) == []


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096, 10_000])
def test_mapped_hash_is_hashlib_sha256(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    # Slices of one page, so the sizes cover files below, on and across slice ends.
    monkeypatch.setattr(prehash, "_SLICE", 4096)
    path = tmp_path / "f.bin"
    data = os.urandom(size)
    path.write_bytes(data)
    assert prehash.mapped_sha256(path) == hashlib.sha256(data).hexdigest()
    hashes = BackgroundHashes(tmp_path, 0)
    try:
        assert hashes.digest(path) == hashlib.sha256(data).hexdigest()
    finally:
        hashes.close()


def test_mapped_hash_stops_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"x" * 100)
    stop = threading.Event()
    stop.set()
    assert prehash.mapped_sha256(path, stop) is None
