"""Copying every blob from one store to another (local directory <-> object storage).

Each blob is streamed from the source into a local temp file while being hashed,
then put into the target with its expected digest, which the target checks again
before the blob becomes visible there. Blobs the target already holds with the
right size are skipped, so an interrupted copy resumes where it stopped; the
catalog is untouched (both stores hold the same content-addressed keys).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from registry.errors import ArgumentError, IntegrityError
from registry.faults import fault_point
from registry.progress import NoProgress, Progress
from registry.store.blob_store import BlobBackend


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
    progress = progress or NoProgress()
    listed = sorted(source.iter_sizes())
    progress.start("copying blobs", sum(size for _sha, size in listed))
    copied = copied_bytes = skipped = 0
    staging.mkdir(parents=True, exist_ok=True)
    try:
        for sha256, size in listed:
            if target.size(sha256) == size:
                skipped += 1
                progress.advance(size)
                continue
            _copy_one(source, target, sha256, staging, progress)
            fault_point("blobs.copied")
            copied += 1
            copied_bytes += size
    finally:
        progress.finish()
    return BlobCopyResult(source.url, target.url, copied, copied_bytes, skipped)


def _copy_one(
    source: BlobBackend, target: BlobBackend, sha256: str, staging: Path, progress: Progress
) -> None:
    fd, name = tempfile.mkstemp(prefix="copy-", dir=staging)
    tmp = Path(name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for chunk in source.iter_chunks(sha256):
                digest.update(chunk)
                out.write(chunk)
                progress.advance(len(chunk))
        if digest.hexdigest() != sha256:
            raise IntegrityError(
                f"blob {sha256[:16]}... in {source.url} hashes to {digest.hexdigest()[:16]}...; "
                "it is corrupt there: run `adapters doctor --deep` on the source"
            )
        target.put_file(tmp, expected=sha256)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
