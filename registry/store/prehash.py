"""Hashing a push's large files on a thread while the format checks read them.

An object store names a blob's key by its digest, so a put of an unhashed file reads
it twice: once to name the key, once through the hashing reader it uploads from. The
format checks of a push read every tensor anyway and take about as long as one hash,
so the first pass runs beside them on another core; the put then gets the digest as
``expected`` and hashes only through its upload reader, which refuses (and aborts the
upload) if the file no longer hashes to it.
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from registry.store.hashing import CHUNK_SIZE

_READ = 8 * CHUNK_SIZE


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
                digest = hashlib.sha256()
                try:
                    with open(path, "rb") as handle:
                        while not self._stop.is_set() and (data := handle.read(_READ)):
                            digest.update(data)
                except OSError:
                    pass  # the put reads the file itself, and reports the problem
                else:
                    if not self._stop.is_set():
                        self._digests[path] = digest.hexdigest()
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
