"""A file's identity and change times, to prove it unchanged between two ``fstat``s.

A push hashes a large file once (prehash.py) and then uploads it to the key that digest
names. Hashing it a second time while uploading proves the uploaded bytes are the hashed
ones, but costs a full SHA-256 pass on the upload's critical path. Instead, the file's
``FileStamp`` is taken before the pre-hash and compared again after the upload has read
the last byte and before the upload completes: if nothing changed, the bytes read twice
are the same bytes. Any ``write``, ``truncate`` or ``fallocate`` sets the mtime (before
the data changes) and ``ctime``; a replaced file has another inode; ``utime`` that puts
the mtime back still moves the ctime.

Two weak spots, both closed by trusting only a file ``settled`` well before the push:

- timestamps come from the kernel's coarse clock (one tick, a few milliseconds; some
  file systems keep seconds), so a write in the same tick as the file's last change can
  leave both times as they were (git calls such index entries "racy");
- a process holding the file in a writable shared memory map can change a page it has
  already dirtied without any new mtime: the kernel sets the mtime when a clean page is
  first written, and a dirty page stays writable until writeback cleans it (by default
  within 35 s: ``dirty_expire_centisecs`` 30 s plus one 5 s ``dirty_writeback``).

A file changed less than ``SETTLED_SECONDS`` before its pre-hash started is hashed again
through the upload (``object_transfer.CheckedReader``), as every file was before. What
remains (tmpfs and other file systems that never write mapped pages back, a writeback
held up for longer, a clock that jumps back) is caught on read: every reader re-hashes a
blob before using it, so the worst case is a loud refusal, never a wrong adapter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SETTLED_SECONDS = 60


@dataclass(frozen=True)
class FileStamp:
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, status: os.stat_result) -> FileStamp:
        return cls(
            status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns, status.st_ctime_ns
        )

    @classmethod
    def of_descriptor(cls, descriptor: int) -> FileStamp:
        return cls.of(os.fstat(descriptor))

    def settled(self, started_ns: int) -> bool:
        """Whether the file last changed ``SETTLED_SECONDS`` or more before ``started_ns``
        (wall-clock nanoseconds), so that ``matches`` can prove it unchanged since."""
        limit = started_ns - SETTLED_SECONDS * 1_000_000_000
        return self.mtime_ns <= limit and self.ctime_ns <= limit
