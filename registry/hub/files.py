"""Checking downloaded files against what the Hub says they are.

For every file the Hub lists its git blob id; for LFS files also the sha256 of the
content (the LFS oid) and the blob id is that of the LFS pointer. A downloaded file is
copied into staging while both hashes are computed, then compared: a file whose bytes
were changed on the server (or on the way) is refused before anything is imported.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from registry.progress import NoProgress, Progress
from registry.store.hashing import CHUNK_SIZE


@dataclass(frozen=True)
class RemoteFile:
    """A file as the Hub lists it at one commit."""

    path: str
    size: int | None
    blob_id: str | None  # git blob id; of the LFS pointer for LFS files
    lfs_sha256: str | None = None


@dataclass(frozen=True)
class CopiedFile:
    path: str
    sha256: str
    size: int
    git_blob_id: str  # as if the bytes were stored in git directly


def lfs_pointer(sha256: str, size: int) -> bytes:
    """The git-lfs pointer file whose blob id the Hub lists for an LFS file."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def copy_hashed(
    source: Path, target: Path, label: str, progress: Progress | None = None
) -> CopiedFile:
    """Copy ``source`` (a file in the HF cache) to ``target`` computing sha256 and git sha1."""
    progress = progress or NoProgress()
    size = source.stat().st_size
    sha256 = hashlib.sha256()
    sha1 = hashlib.sha1(b"blob %d\0" % size)
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    copied = 0
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as src, open(target, "wb") as dst:
        while True:
            count = src.readinto(buffer)
            if not count:
                break
            chunk = view[:count]
            sha256.update(chunk)
            sha1.update(chunk)
            dst.write(chunk)
            copied += count
            progress.advance(count)
        dst.flush()
        os.fsync(dst.fileno())
    if copied != size:  # the file changed while it was read
        sha1 = hashlib.sha1(b"blob %d\0" % copied + target.read_bytes())
    return CopiedFile(label, sha256.hexdigest(), copied, sha1.hexdigest())


def mismatch(copied: CopiedFile, remote: RemoteFile) -> str | None:
    """Why the copied bytes are not the file the Hub lists, or None when they are."""
    if remote.size is not None and copied.size != remote.size:
        return f"has {copied.size} bytes, the Hub lists {remote.size}"
    if remote.lfs_sha256 is not None and copied.sha256 != remote.lfs_sha256:
        return (
            f"its sha256 is {copied.sha256[:16]}..., the Hub's LFS oid is "
            f"{remote.lfs_sha256[:16]}..."
        )
    if remote.blob_id is not None:
        as_lfs = git_blob_id(lfs_pointer(copied.sha256, copied.size))
        if remote.blob_id not in (copied.git_blob_id, as_lfs):
            return (
                f"its git blob id is {copied.git_blob_id[:16]}..., the Hub lists "
                f"{remote.blob_id[:16]}..."
            )
    if remote.lfs_sha256 is None and remote.blob_id is None:
        return "the Hub lists no hash for it, so it cannot be checked"
    return None


def evict_cached(snapshot_file: Path) -> None:
    """Remove a bad file from the HF cache (the blob and the snapshot's link to it), so
    that the next pull downloads it again instead of reusing the bad bytes."""
    try:
        blob = snapshot_file.resolve(strict=True)
    except OSError:
        return
    for path in (snapshot_file, blob):
        with contextlib.suppress(OSError):
            path.unlink()
