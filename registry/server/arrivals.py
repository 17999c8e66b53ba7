"""Uploads that arrived moments ago, which a push need not hash again.

A push re-hashes each staged upload it names (``verified_files.intact_upload``): one that
waited on disk for hours may have been damaged since it was hashed on arrival. Within a
minute of arriving its pages are still in memory, so reading it again would read back
the very bytes that were hashed, and could not find damage on the disk beneath them.
What could change it then is a write through the filesystem, and any such write changes
its stamp (size, mtime, ctime, inode). So an upload that arrived less than
``FRESH_SECONDS`` ago with its stamp unchanged is taken as hashed; any other is re-hashed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from registry.bounded_lru import BoundedLru
from registry.store.file_stamp import FileStamp

FRESH_SECONDS = 60.0
_CAPACITY = 4096


class RecentUploads:
    """The stamps of staged uploads as they were right after they were hashed and stored."""

    def __init__(self, capacity: int = _CAPACITY, seconds: float = FRESH_SECONDS) -> None:
        self.seconds = seconds
        # Noted on the event loop, read on worker threads.
        self._arrived: BoundedLru[str, tuple[FileStamp, float]] = BoundedLru(capacity)

    def note(self, sha256: str, path: Path) -> None:
        """``path`` (the staged upload of ``sha256``) was just hashed and fsynced."""
        try:
            stamp = FileStamp.of(path.stat())
        except OSError:
            return
        self._arrived.put(sha256, (stamp, time.monotonic()))

    def touch(self, sha256: str, path: Path) -> None:
        """Set ``path``'s times to now (a retried ``PUT`` keeps the upload from gc). A
        recent arrival unchanged until this touch stays one: the change is the server's."""
        arrived = self._arrived.get(sha256)
        fresh = self._unchanged_since(arrived, path)
        os.utime(path)
        if arrived is None or not fresh:
            return
        try:
            stamp = FileStamp.of(path.stat())
        except OSError:
            return
        self._arrived.replace(sha256, arrived, (stamp, arrived[1]))

    def unchanged(self, sha256: str, path: Path) -> bool:
        """Whether ``path`` arrived as ``sha256`` less than ``seconds`` ago and its stamp
        is still the one it had then."""
        return self._unchanged_since(self._arrived.get(sha256), path)

    def _unchanged_since(self, arrived: tuple[FileStamp, float] | None, path: Path) -> bool:
        if arrived is None or time.monotonic() - arrived[1] >= self.seconds:
            return False
        try:
            return FileStamp.of(path.stat()) == arrived[0]
        except OSError:
            return False
