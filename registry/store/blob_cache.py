"""The local read-through cache of blobs from object storage.

Readers (export, load, merge, combine) need local files to mmap or copy; for an
object store those come from here. Entries are content-addressed like the store
(``sha256/ab/cdef...``), filled by streaming into a temp file that is hash-checked
before it is renamed into place, so a reader never sees a partial or wrong copy.
Several processes on one machine share the cache: a fill holds a per-digest file
lock (the second process waits, then finds the entry), and renames are atomic.
An export on a miss streams the blob once into its target and the cache together
(``copy_out``), so a cold export costs one download; the writes run on a thread of
their own, a few chunks behind the hashing, so neither waits for the other, and each
chunk of the cache copy is sent to disk as it is written (``sync_file_range`` on
Linux), so the ``fsync`` before the rename finds little left to do. The total
size is bounded: after each fill the least recently used entries (by mtime, touched on
every hit) are removed until the cache fits, sparing the few this process handed out in
the last minutes (their reader may not have opened them yet: a version larger than the
cache still loads). Removing a file another process has open or mapped is safe on POSIX;
it keeps its copy.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import re
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, TYPE_CHECKING, cast

from registry.errors import ArgumentError, BlobStoreError, IntegrityError
from registry.faults import fault_point
from registry.store.hashing import ProgressCallback, copy_hashed

if TYPE_CHECKING:
    from registry.store.home import RegistryHome

CACHE_DIR_ENV = "ADAPTERS_CACHE_DIR"
CACHE_SIZE_ENV = "ADAPTERS_CACHE_SIZE"
DEFAULT_MAX_BYTES = 20 * 1024**3
WRITES_BEHIND = 4  # chunks hashed but not yet written, at most (bounds memory)
HANDED_OUT_KEPT = 16  # entries fetch() handed out that eviction spares, at most...
HANDED_OUT_SECONDS = 600.0  # ...and for this long
_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}

ChunkSource = Callable[[], Iterable[bytes]]


def parse_size(text: str) -> int:
    """``1073741824``, ``512M``, ``20G`` or ``20GB`` -> bytes."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMGT]?)(?:i?B)?\s*", text.upper())
    if match is None:
        raise ArgumentError(f"{CACHE_SIZE_ENV}={text!r} is not a size; use bytes or e.g. 20G")
    return int(match.group(1)) * _UNITS[match.group(2)]


class BlobCache:
    def __init__(self, root: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        # Entries fetch() handed out lately, with when: the caller may not have opened
        # them yet (a load fetches every file of a version, then reads them), so a later
        # fill of this cache does not evict them, even when one version outgrows the cache.
        self._handed_out: deque[tuple[str, float]] = deque(maxlen=HANDED_OUT_KEPT)

    @classmethod
    def for_home(cls, home: RegistryHome) -> BlobCache:
        """``ADAPTERS_CACHE_DIR`` (else the home's ``cache/``), ``ADAPTERS_CACHE_SIZE``."""
        root = os.environ.get(CACHE_DIR_ENV)
        size = os.environ.get(CACHE_SIZE_ENV)
        return cls(
            Path(root).expanduser() if root else home.root / "cache",
            parse_size(size) if size else DEFAULT_MAX_BYTES,
        )

    def path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:]

    def fetch(self, sha256: str, chunks: ChunkSource, label: str) -> Path:
        """The cached file for ``sha256``, filled from ``chunks()`` when absent."""
        final = self.path(sha256)
        if _touch(final):
            return final
        with self._lock(sha256):
            if not _touch(final):
                self._fill(sha256, chunks, label, final)
        self._handed_out.append((sha256, time.monotonic()))
        self.evict(keep=sha256)
        return final

    def copy_out(
        self,
        sha256: str,
        chunks: ChunkSource,
        label: str,
        destination: Path,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Write the blob to the new file ``destination``: from the cached copy (re-hashed
        on the way; a damaged one is dropped), else from ``chunks()`` written to
        ``destination`` and the cache at once, so a miss downloads the blob once. On a
        hash mismatch ``destination`` is removed and nothing enters the cache."""
        final = self.path(sha256)
        if _touch(final) and self._copy_hit(final, sha256, destination, progress):
            return
        with self._lock(sha256):
            if _touch(final) and self._copy_hit(final, sha256, destination, progress):
                return
            try:
                with open(destination, "wb") as tee:
                    self._fill(sha256, chunks, label, final, tee, progress)
            except BaseException:
                destination.unlink(missing_ok=True)
                raise
        self.evict(keep=sha256)

    def _copy_hit(
        self, final: Path, sha256: str, destination: Path, progress: ProgressCallback | None
    ) -> bool:
        try:
            if copy_hashed(final, destination, progress) == sha256:
                return True
        except FileNotFoundError:  # evicted by another process meanwhile
            if not destination.parent.is_dir():
                raise
        self.discard(sha256)  # damaged (or gone): fetch it again
        destination.unlink(missing_ok=True)
        return False

    def _lock(self, sha256: str) -> contextlib.AbstractContextManager[object]:
        from filelock import FileLock

        locks = self.root / "locks"
        try:
            locks.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _unusable(self.root, exc) from None
        return FileLock(str(locks / f"{sha256}.lock"))

    def check_writable(self) -> str | None:
        """Why the cache cannot take a new entry (for doctor), or None."""
        try:
            staging = self.root / "staging"
            staging.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=staging) as probe:
                probe.write(b"probe")
        except OSError as exc:
            return str(_unusable(self.root, exc))
        return None

    def _fill(
        self,
        sha256: str,
        chunks: ChunkSource,
        label: str,
        final: Path,
        tee: IO[bytes] | None = None,
        progress: ProgressCallback | None = None,
    ) -> None:
        staging = self.root / "staging"
        try:
            staging.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", dir=staging)
        except OSError as exc:
            raise _write_failed(label, self.root, exc) from None
        tmp = Path(tmp_name)
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out:
                # Leaving this block waits for the writes still queued, before ``out`` closes.
                with ThreadPoolExecutor(1, thread_name_prefix="cache-write") as writer:
                    writes: deque[Future[None]] = deque()
                    for chunk in chunks():
                        writes.append(writer.submit(_write, chunk, out, tee))
                        digest.update(chunk)
                        if progress is not None:
                            progress(len(chunk))
                        fault_point("cache.filling")
                        while len(writes) > WRITES_BEHIND:
                            _wait(writes.popleft(), label, self.root, tee)
                    while writes:
                        _wait(writes.popleft(), label, self.root, tee)
                try:
                    out.flush()
                    os.fsync(out.fileno())
                except OSError as exc:
                    raise _write_failed(label, self.root, exc) from None
            if digest.hexdigest() != sha256:
                raise IntegrityError(
                    f"{label} hashes to {digest.hexdigest()[:16]}..., not {sha256[:16]}...; "
                    "the stored blob is corrupt: run `adapters doctor --deep`"
                )
            final.parent.mkdir(parents=True, exist_ok=True)
            os.chmod(tmp, 0o444)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)

    def discard(self, sha256: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(sha256).unlink()

    def entries(self) -> list[tuple[Path, int, float]]:
        """Every cached blob with its size and last use, oldest first."""
        found: list[tuple[Path, int, float]] = []
        base = self.root / "sha256"
        if not base.is_dir():
            return found
        for prefix in base.iterdir():
            if len(prefix.name) != 2:
                continue
            for entry in prefix.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    stat = entry.stat()
                    found.append((entry, stat.st_size, stat.st_mtime))
        return sorted(found, key=lambda item: item[2])

    def evict(self, keep: str | None = None) -> int:
        """Remove least recently used entries until the cache fits; bytes removed."""
        entries = self.entries()
        total = sum(size for _p, size, _t in entries)
        recent = time.monotonic() - HANDED_OUT_SECONDS
        kept = {self.path(sha256) for sha256, when in self._handed_out if when > recent}
        if keep is not None:
            kept.add(self.path(keep))
        removed = 0
        for path, size, _mtime in entries:
            if total <= self.max_bytes:
                break
            if path in kept:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                total -= size
                removed += size
        return removed


class _TeeWriteError(Exception):
    """A write to the export's file (not the cache's) failed."""


def _write(chunk: bytes, out: IO[bytes], tee: IO[bytes] | None) -> None:
    start = out.tell()
    out.write(chunk)
    out.flush()
    _start_writeback(out.fileno(), start, len(chunk))
    if tee is not None:
        try:
            tee.write(chunk)
        except OSError as exc:
            raise _TeeWriteError() from exc


def _wait(write: Future[None], label: str, root: Path, tee: IO[bytes] | None) -> None:
    """The write's result; a failed write (a full disk) as one line naming where."""
    try:
        write.result()
    except _TeeWriteError as exc:
        cause = cast(OSError, exc.__cause__)
        place = Path(str(getattr(tee, "name", root))).parent
        raise _write_failed(label, place, cause) from None
    except OSError as exc:
        raise _write_failed(label, root, exc) from None


def _unusable(root: Path, exc: OSError) -> BlobStoreError:
    return BlobStoreError(
        f"the blob cache {root} is not a writable directory ({exc.strerror or exc}); "
        f"fix its permissions or point {CACHE_DIR_ENV} at a writable directory"
    )


def _write_failed(label: str, place: Path, exc: OSError) -> BlobStoreError:
    return BlobStoreError(
        f"cannot write {label} under {place}: {exc.strerror or exc}; free space there "
        f"(or point {CACHE_DIR_ENV} elsewhere for the cache) and run the command again"
    )


@functools.cache
def _sync_file_range() -> Callable[[int, int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import ctypes.util

    try:
        call = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    call.argtypes = [ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint]
    return cast(Callable[[int, int, int, int], int], call)


def _start_writeback(fd: int, offset: int, count: int) -> None:
    """Start writing ``count`` bytes at ``offset`` to disk without waiting for them: the
    fsync that makes the entry durable then waits only for the last few. A hint; where
    it is not available the fsync does it all."""
    call = _sync_file_range()
    if call is not None:
        call(fd, offset, count, 2)  # SYNC_FILE_RANGE_WRITE


def _touch(path: Path) -> bool:
    """Mark a hit for LRU; False when the entry is absent."""
    try:
        os.utime(path)
    except (FileNotFoundError, NotADirectoryError):  # absent, or the cache dir is not one
        return False
    except PermissionError:
        return path.is_file()  # a shared read-only cache still serves hits
    return True
