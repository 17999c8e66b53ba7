"""The content-addressed blob store."""

from __future__ import annotations

import hashlib
import stat
import threading
from pathlib import Path

import pytest

from registry.errors import IntegrityError
from registry.store.blobs import TMP_PREFIX, BlobStore, StoredBlob
from registry.store.hashing import CHUNK_SIZE


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "objects")


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if not p.is_dir())


def staged(store: BlobStore) -> list[Path]:
    staging = store.root / "sha256" / "staging"
    return sorted(staging.iterdir()) if staging.exists() else []


def source(tmp_path: Path, data: bytes, name: str = "src.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- layout -----------------------------------------------------------------------


def test_path_layout(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "o")
    digest = sha(b"hello")
    assert store.path(digest) == tmp_path / "o" / "sha256" / digest[:2] / digest[2:]


def test_put_bytes_layout_and_result(store: BlobStore) -> None:
    data = b"hello world"
    result = store.put_bytes(data)
    assert result == StoredBlob(sha(data), len(data), created=True)
    expected_path = store.root / "sha256" / sha(data)[:2] / sha(data)[2:]
    assert expected_path.read_bytes() == data
    assert all_files(store.root) == [expected_path]
    assert store.exists(sha(data))


@pytest.mark.parametrize("size", [0, 1, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1])
def test_put_file_copies_and_hashes(store: BlobStore, tmp_path: Path, size: int) -> None:
    data = bytes((i * 7 + size) % 251 for i in range(size))
    result = store.put_file(source(tmp_path, data))
    assert result == StoredBlob(sha(data), size, created=True)
    assert store.path(sha(data)).read_bytes() == data
    assert all_files(store.root) == [store.path(sha(data))]


def test_put_file_reports_progress(store: BlobStore, tmp_path: Path) -> None:
    seen: list[int] = []
    store.put_file(source(tmp_path, b"x" * (CHUNK_SIZE + 10)), progress=seen.append)
    assert seen == [CHUNK_SIZE, 10]


@pytest.mark.parametrize("how", ["bytes", "file"])
def test_blobs_are_read_only(store: BlobStore, tmp_path: Path, how: str) -> None:
    data = b"immutable"
    if how == "bytes":
        store.put_bytes(data)
    else:
        store.put_file(source(tmp_path, data))
    mode = stat.S_IMODE(store.path(sha(data)).stat().st_mode)
    assert mode == 0o444


# -- deduplication ----------------------------------------------------------------


def test_put_bytes_twice_is_stored_once(store: BlobStore) -> None:
    first = store.put_bytes(b"same")
    second = store.put_bytes(b"same")
    assert first.created is True
    assert second == StoredBlob(sha(b"same"), 4, created=False)
    assert all_files(store.root) == [store.path(sha(b"same"))]


def test_put_file_twice_is_stored_once(store: BlobStore, tmp_path: Path) -> None:
    first = store.put_file(source(tmp_path, b"same", "one"))
    second = store.put_file(source(tmp_path, b"same", "two"))
    assert first == StoredBlob(sha(b"same"), 4, created=True)
    assert second == StoredBlob(sha(b"same"), 4, created=False)
    assert all_files(store.root) == [store.path(sha(b"same"))]
    assert staged(store) == []


def test_put_file_after_put_bytes_dedups(store: BlobStore, tmp_path: Path) -> None:
    store.put_bytes(b"shared")
    again = store.put_file(source(tmp_path, b"shared"), expected=sha(b"shared"))
    assert again == StoredBlob(sha(b"shared"), 6, created=False)
    assert all_files(store.root) == [store.path(sha(b"shared"))]


def test_put_file_with_known_expected_does_not_read_source(
    store: BlobStore, tmp_path: Path
) -> None:
    store.put_bytes(b"present")
    result = store.put_file(tmp_path / "does-not-exist", expected=sha(b"present"))
    assert result == StoredBlob(sha(b"present"), 7, created=False)


def test_put_file_with_correct_expected(store: BlobStore, tmp_path: Path) -> None:
    result = store.put_file(source(tmp_path, b"abc"), expected=sha(b"abc"))
    assert result == StoredBlob(sha(b"abc"), 3, created=True)


def test_distinct_contents_get_distinct_blobs(store: BlobStore) -> None:
    contents = [b"a", b"b", b"", b"a" * 1000]
    for data in contents:
        assert store.put_bytes(data).created
    assert sorted(store.iter_digests()) == sorted(sha(d) for d in contents)
    for data in contents:
        assert store.path(sha(data)).read_bytes() == data


def test_concurrent_puts_of_the_same_content(store: BlobStore, tmp_path: Path) -> None:
    data = b"z" * (3 * CHUNK_SIZE)
    src = source(tmp_path, data)
    results: list[StoredBlob] = []
    errors: list[BaseException] = []

    def put() -> None:
        try:
            results.append(store.put_file(src))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=put) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert {(r.sha256, r.size) for r in results} == {(sha(data), len(data))}
    assert any(r.created for r in results)
    assert all_files(store.root) == [store.path(sha(data))]
    assert store.check(sha(data), len(data)) is None


# -- no temp files ----------------------------------------------------------------


def test_no_temp_files_after_success(store: BlobStore, tmp_path: Path) -> None:
    store.put_bytes(b"one")
    store.put_file(source(tmp_path, b"two"))
    store.put_file(source(tmp_path, b"two"))
    assert staged(store) == []
    assert not list(store.root.rglob(f"{TMP_PREFIX}*"))


def test_wrong_expected_hash_raises_and_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    wrong = sha(b"something else")
    with pytest.raises(IntegrityError, match=f"expected sha256 {wrong}, got {sha(b'actual')}"):
        store.put_file(source(tmp_path, b"actual"), expected=wrong)
    assert all_files(store.root) == []
    assert not store.exists(wrong)
    assert not store.exists(sha(b"actual"))
    assert list(store.iter_digests()) == []


def test_missing_source_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        store.put_file(tmp_path / "missing")
    assert all_files(store.root) == []


def test_failure_mid_copy_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    class Interrupted(Exception):
        pass

    def progress(count: int) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        store.put_file(source(tmp_path, b"q" * (2 * CHUNK_SIZE)), progress=progress)
    assert all_files(store.root) == []


def test_keyboard_interrupt_mid_copy_leaves_nothing(store: BlobStore, tmp_path: Path) -> None:
    def progress(count: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        store.put_file(source(tmp_path, b"q" * 10), progress=progress)
    assert all_files(store.root) == []


# -- checking ---------------------------------------------------------------------


def test_check_intact(store: BlobStore) -> None:
    blob = store.put_bytes(b"fine")
    assert store.check(blob.sha256) is None
    assert store.check(blob.sha256, size=4) is None


def test_check_missing(store: BlobStore) -> None:
    assert store.check(sha(b"never stored")) == "blob is missing from the store"
    blob = store.put_bytes(b"gone")
    store.path(blob.sha256).unlink()
    assert store.check(blob.sha256, 4) == "blob is missing from the store"


def test_check_wrong_size(store: BlobStore) -> None:
    blob = store.put_bytes(b"12345")
    assert store.check(blob.sha256, size=6) == "blob has 5 bytes, 6 recorded"
    assert store.check(blob.sha256, size=0) == "blob has 5 bytes, 0 recorded"


def _rewrite(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)
    path.chmod(0o444)


def test_check_flipped_byte(store: BlobStore) -> None:
    data = bytes(range(200))
    blob = store.put_bytes(data)
    path = store.path(blob.sha256)
    corrupted = bytearray(data)
    corrupted[100] ^= 0x01
    _rewrite(path, bytes(corrupted))
    problem = store.check(blob.sha256, size=200)
    assert problem == (
        f"blob content hashes to {sha(bytes(corrupted))[:16]}..., not {blob.sha256[:16]}..."
    )


def test_check_truncated_without_recorded_size(store: BlobStore) -> None:
    blob = store.put_bytes(b"abcdef")
    _rewrite(store.path(blob.sha256), b"abc")
    assert store.check(blob.sha256) == (
        f"blob content hashes to {sha(b'abc')[:16]}..., not {blob.sha256[:16]}..."
    )
    assert store.check(blob.sha256, size=6) == "blob has 3 bytes, 6 recorded"


# -- listing and deleting ---------------------------------------------------------


def test_iter_digests_on_an_empty_store(store: BlobStore) -> None:
    assert list(store.iter_digests()) == []
    (store.root / "sha256").mkdir(parents=True)
    assert list(store.iter_digests()) == []


def test_iter_digests_lists_exactly_the_blobs(store: BlobStore, tmp_path: Path) -> None:
    digests = {store.put_bytes(bytes([i]) * i).sha256 for i in range(20)}
    # Leftovers of interrupted writes and unrelated entries are not blobs.
    staging = store.root / "sha256" / "staging"
    (staging / f"{TMP_PREFIX}abc123").write_bytes(b"partial")
    some = sorted(digests)[0]
    (store.path(some).parent / f"{TMP_PREFIX}zzz").write_bytes(b"partial")
    (store.root / "sha256" / "README").write_text("not a blob")
    listed = list(store.iter_digests())
    assert listed == sorted(digests)
    assert all(len(d) == 64 for d in listed)


def test_delete(store: BlobStore) -> None:
    keep = store.put_bytes(b"keep").sha256
    drop = store.put_bytes(b"drop").sha256
    store.delete(drop)
    assert not store.exists(drop)
    assert store.exists(keep)
    assert list(store.iter_digests()) == [keep]
    store.delete(drop)  # deleting twice is fine
    store.delete(sha(b"never stored"))
    again = store.put_bytes(b"drop")
    assert again.created is True
