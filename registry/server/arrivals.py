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
import threading
import time
from collections import OrderedDict
from pathlib import Path

from registry.store.file_stamp import FileStamp

FRESH_SECONDS = 60.0
_CAPACITY = 4096


class RecentUploads:
    """The stamps of staged uploads as they were right after they were hashed and stored."""

    def __init__(self, capacity: int = _CAPACITY, seconds: float = FRESH_SECONDS) -> None:
        self.capacity = capacity
        self.seconds = seconds
        self._arrived: OrderedDict[str, tuple[FileStamp, float]] = OrderedDict()
        self._lock = threading.Lock()  # noted on the event loop, read on worker threads

    def note(self, sha256: str, path: Path) -> None:
        """``path`` (the staged upload of ``sha256``) was just hashed and fsynced."""
        try:
            stamp = FileStamp.of(path.stat())
        except OSError:
            return
        with self._lock:
            self._arrived[sha256] = (stamp, time.monotonic())
            self._arrived.move_to_end(sha256)
            while len(self._arrived) > self.capacity:
                self._arrived.popitem(last=False)

    def touch(self, sha256: str, path: Path) -> None:
        """Set ``path``'s times to now (a retried ``PUT`` keeps the upload from gc). A
        recent arrival unchanged until this touch stays one: the change is the server's."""
        fresh = self.unchanged(sha256, path)
        os.utime(path)
        if not fresh:
            return
        try:
            stamp = FileStamp.of(path.stat())
        except OSError:
            return
        with self._lock:
            arrived = self._arrived.get(sha256)
            if arrived is not None:
                self._arrived[sha256] = (stamp, arrived[1])

    def unchanged(self, sha256: str, path: Path) -> bool:
        """Whether ``path`` arrived as ``sha256`` less than ``seconds`` ago and its stamp
        is still the one it had then."""
        with self._lock:
            arrived = self._arrived.get(sha256)
        if arrived is None or time.monotonic() - arrived[1] >= self.seconds:
            return False
        try:
            return FileStamp.of(path.stat()) == arrived[0]
        except OSError:
            return False
