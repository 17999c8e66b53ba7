"""Copying every blob from one store to another (local directory <-> object storage).

Each blob is streamed from the source into a local temp file while being hashed,
then put into the target with its expected digest, which the target checks again
before the blob becomes visible there. Blobs the target already holds with the
right size are skipped, so an interrupted copy resumes where it stopped; the
catalog is untouched (both stores hold the same content-addressed keys).

The target is listed once rather than asked about each blob, and small blobs are
copied several at a time: a store of thousands of small files is otherwise one round
trip after another. Large blobs go one at a time (each is a parallel transfer of its
own), so at most ``COPY_WORKERS`` small ones and one large one are staged at once.
A source that holds no blobs is refused: it is a mistyped path or prefix far more
often than an empty store.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from registry.errors import ArgumentError, BlobStoreError, IntegrityError
from registry.faults import fault_point
from registry.progress import NoProgress, Progress
from registry.store.blob_store import BlobBackend

COPY_WORKERS = 8
SMALL_BLOB = 8 * 1024**2  # blobs up to this size are copied COPY_WORKERS at a time


@dataclass(frozen=True)
class BlobCopyResult:
    source: str
    target: str
    copied: int
    copied_bytes: int
    skipped: int  # already in the target with the right size


def copy_blobs(
    source: BlobBackend,
    target: BlobBackend,
    staging: Path,
    progress: Progress | None = None,
) -> BlobCopyResult:
    if source.url == target.url:
        raise ArgumentError(f"source and target are the same store ({source.url})")
    listed = sorted(source.iter_sizes())
    if not listed:
        raise ArgumentError(
            f"{source.url} holds no blobs: check the path or prefix of the source "
            "(`-` is this registry's blob store)"
        )
    held = dict(target.iter_sizes())
    todo = [(sha256, size) for sha256, size in listed if held.get(sha256) != size]
    progress = _Locked(progress or NoProgress())
    progress.start("copying blobs", sum(size for _sha, size in listed))
    progress.advance(sum(size for _sha, size in listed) - sum(size for _sha, size in todo))
    staging.mkdir(parents=True, exist_ok=True)
    small = [item for item in todo if item[1] <= SMALL_BLOB]
    large = [item for item in todo if item[1] > SMALL_BLOB]
    try:
        _copy_small(source, target, small, staging, progress)
        for sha256, _size in large:
            _copy_one(source, target, sha256, staging, progress)
            fault_point("blobs.copied")
    finally:
        progress.finish()
    copied_bytes = sum(size for _sha, size in todo)
    return BlobCopyResult(source.url, target.url, len(todo), copied_bytes, len(listed) - len(todo))


def _copy_small(
    source: BlobBackend,
    target: BlobBackend,
    blobs: list[tuple[str, int]],
    staging: Path,
    progress: Progress,
) -> None:
    """Copy ``blobs`` COPY_WORKERS at a time; the first failure stops the rest."""
    pending = iter(blobs)
    with ThreadPoolExecutor(COPY_WORKERS, thread_name_prefix="blob-copy") as pool:
        running: set[Future[None]] = set()
        try:
            while True:
                for sha256, _size in pending:
                    running.add(pool.submit(_copy_one, source, target, sha256, staging, progress))
                    if len(running) >= 2 * COPY_WORKERS:
                        break
                if not running:
                    return
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()
                    fault_point("blobs.copied")
        finally:
            for future in running:
                future.cancel()


class _Locked:
    """A progress that workers on several threads may advance."""

    def __init__(self, inner: Progress) -> None:
        self._inner = inner
        self._lock = threading.Lock()

    def start(self, label: str, total_bytes: int) -> None:
        self._inner.start(label, total_bytes)

    def advance(self, count: int) -> None:
        with self._lock:
            self._inner.advance(count)

    def finish(self) -> None:
        self._inner.finish()


def _copy_one(
    source: BlobBackend, target: BlobBackend, sha256: str, staging: Path, progress: Progress
) -> None:
    try:
        fd, name = tempfile.mkstemp(prefix="copy-", dir=staging)
    except OSError as exc:
        raise _cannot_write(staging, exc, "free space there") from None
    tmp = Path(name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in source.iter_chunks(sha256):
                digest.update(chunk)
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise _cannot_write(staging, exc, "free space there") from None
                progress.advance(len(chunk))
        if digest.hexdigest() != sha256:
            raise IntegrityError(
                f"blob {sha256[:16]}... in {source.url} hashes to {digest.hexdigest()[:16]}...; "
                "it is corrupt there: run `adapters doctor --deep` on the source"
            )
        try:
            target.put_file(tmp, expected=sha256)
        except OSError as exc:  # a local target (an object store's errors are its own)
            raise _cannot_write(
                target.url, exc, "give a writable directory with room as TARGET"
            ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _cannot_write(place: Path | str, exc: OSError, fix: str) -> BlobStoreError:
    return BlobStoreError(
        f"cannot write under {place}: {exc.strerror or exc}; {fix}, then copy again"
    )
