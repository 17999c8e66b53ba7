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
SIGBUS) was already out of bounds.

Each file's ``FileStamp`` is taken before it is hashed and again after: a file that
settled well before the push and did not change during the hash gets its stamp handed
to the put with the digest (``known``), and the upload then proves the file unchanged
by the stamp instead of hashing it again (file_stamp.py says why that holds). Any other
file is hashed again through the upload's hashing reader, which refuses a change.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from registry.store.file_stamp import FileStamp

_SLICE = 64 * 1024**2
_SMALL = 1024**2  # read, not mapped


@dataclass(frozen=True)
class Prehashed:
    """A file's digest, and its stamp when the upload may trust it instead of re-hashing."""

    sha256: str
    stamp: FileStamp | None


class BackgroundHashes:
    """The sha256 of every regular file of at least ``min_size`` bytes under ``root``,
    computed in path order on a thread; ``min_size`` None hashes nothing."""

    def __init__(self, root: Path, min_size: int | None) -> None:
        self._stop = threading.Event()
        self._done: dict[Path, threading.Event] = {}
        self._digests: dict[Path, str] = {}
        self._stamps: dict[Path, FileStamp] = {}
        self._started_ns = time.time_ns()  # what "settled before the push" is measured from
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
                    found, stamp = _stamped_sha256(path, self._stop)
                except (OSError, ValueError):
                    found = stamp = None  # the put reads the file itself, and reports it
                if found is not None:
                    self._digests[path] = found
                if stamp is not None and stamp.settled(self._started_ns):
                    self._stamps[path] = stamp
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

    def known(self, path: Path) -> Prehashed | None:
        """``path``'s digest with its stamp (None unless settled and unchanged while
        hashed), waiting for it; None when not hashed here."""
        found = self.digest(path)
        if found is None:
            return None
        key = _key(path)
        return Prehashed(found, self._stamps.get(key) if key is not None else None)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def mapped_sha256(path: Path, stop: threading.Event | None = None) -> str | None:
    """``path``'s hex sha256 read through a memory map; None if ``stop`` is set first."""
    return _stamped_sha256(path, stop)[0]


def _stamped_sha256(
    path: Path, stop: threading.Event | None
) -> tuple[str | None, FileStamp | None]:
    """The digest as ``mapped_sha256``, and the file's stamp from before the hash if the
    file still has it after the hash (else None)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        before = FileStamp.of_descriptor(handle.fileno())
        if before.size == 0:
            return digest.hexdigest(), None  # an empty file cannot be mapped
        if before.size <= _SMALL:  # one read costs less than setting up a map
            if stop is not None and stop.is_set():
                return None, None
            digest.update(handle.read())
            after = FileStamp.of_descriptor(handle.fileno())
            return digest.hexdigest(), before if after == before else None
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            if hasattr(mapped, "madvise"):  # read ahead: each page is read once, in order
                mapped.madvise(mmap.MADV_SEQUENTIAL)
            with memoryview(mapped) as view:
                for start in range(0, len(view), _SLICE):
                    if stop is not None and stop.is_set():
                        return None, None
                    digest.update(view[start : start + _SLICE])
        after = FileStamp.of_descriptor(handle.fileno())
    return digest.hexdigest(), before if after == before else None


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
