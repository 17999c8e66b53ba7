"""Hashing a push's large files on a thread while the format checks read them.

An object store names a blob's key by its digest, so a put of an unhashed file reads
it twice: once to name the key, once through the hashing reader it uploads from. The
format checks of a push read every tensor anyway (their NaN/Inf scan takes about half
as long as one hash), so the first pass runs beside them on another core; the put then
gets the digest as ``expected`` and hashes only through its upload reader, which refuses
(and aborts the upload) if the file no longer hashes to it.

The upload waits for this digest, so the hash is on the push's critical path. It hashes
a memory map of the file in ``_SLICE`` steps: no copy out of the page cache (about 10%
less CPU than reads into a buffer, close to hashlib's in-memory speed), and the GIL,
which hashlib releases inside each update, changes hands once per 64 MiB instead of
twice per read, so the format checks running Python on the main thread meanwhile slow
it little. The format checks map the same file to scan it for NaN/Inf already, so a
file truncated by another process mid-push (which ends a process reading a map with
SIGBUS) was already out of bounds; a file that changes otherwise is caught by the
upload's hashing reader.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
from pathlib import Path

_SLICE = 64 * 1024**2


class BackgroundHashes:
    """The sha256 of every regular file of at least ``min_size`` bytes under ``root``,
    computed in path order on a thread; ``min_size`` None hashes nothing."""

    def __init__(self, root: Path, min_size: int | None) -> None:
        self._stop = threading.Event()
        self._done: dict[Path, threading.Event] = {}
        self._digests: dict[Path, str] = {}
        files = _large_files(root, min_size) if min_size is not None else []
        for path in files:
            self._done[path] = threading.Event()
        self._thread: threading.Thread | None = None
        if files:
            self._thread = threading.Thread(
                target=self._run, args=(files,), name="push-prehash", daemon=True
            )
            self._thread.start()

    def _run(self, files: list[Path]) -> None:
        try:
            for path in files:
                try:
                    found = mapped_sha256(path, self._stop)
                except (OSError, ValueError):
                    found = None  # the put reads the file itself, and reports the problem
                if found is not None:
                    self._digests[path] = found
                self._done[path].set()
        finally:
            for event in self._done.values():
                event.set()

    def digest(self, path: Path) -> str | None:
        """``path``'s digest once hashed (waiting for it), or None when not hashed here."""
        key = _key(path)
        done = self._done.get(key) if key is not None else None
        if done is None:
            return None
        done.wait()
        return self._digests.get(key) if key is not None else None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def mapped_sha256(path: Path, stop: threading.Event | None = None) -> str | None:
    """``path``'s hex sha256 read through a memory map; None if ``stop`` is set first."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return digest.hexdigest()  # an empty file cannot be mapped
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            if hasattr(mapped, "madvise"):  # read ahead: each page is read once, in order
                mapped.madvise(mmap.MADV_SEQUENTIAL)
            with memoryview(mapped) as view:
                for start in range(0, len(view), _SLICE):
                    if stop is not None and stop.is_set():
                        return None
                    digest.update(view[start : start + _SLICE])
    return digest.hexdigest()


def _key(path: Path) -> Path | None:
    try:
        return path.resolve(strict=True)
    except OSError:
        return None


def _large_files(root: Path, min_size: int) -> list[Path]:
    candidates = [root] if root.is_file() else []
    if root.is_dir():
        for folder, _dirs, names in os.walk(root):
            candidates += [Path(folder, name) for name in sorted(names)]
    found: dict[Path, None] = {}
    for path in sorted(candidates):
        key = _key(path)
        try:
            if key is not None and key.is_file() and key.stat().st_size >= min_size:
                found[key] = None
        except OSError:
            continue
    return list(found)
