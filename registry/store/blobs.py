"""Content-addressed blob store: ``objects/sha256/ab/cdef...``.

Writes go to a temp file in the blob's own directory, are fsynced, checked
against the expected hash and only then renamed into place, so a reader never
sees a partial blob and a crash leaves at most a ``.tmp-*`` file behind.
Identical content is stored once, whichever version refers to it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from registry.errors import IntegrityError, RegistryError
from registry.faults import fault_point
from registry.store.blob_store import DigestHook, StoredBlob
from registry.store.file_stamp import FileStamp
from registry.store.hashing import (
    CHUNK_SIZE,
    ProgressCallback,
    copy_hashed,
    sha256_file,
    write_hashed,
)

TMP_PREFIX = ".tmp-"

__all__ = ["TMP_PREFIX", "BlobStore", "DigestHook", "StoredBlob"]


class BlobStore:
    """The local directory store (``BlobBackend``); ``path`` is the blob file itself."""

    def __init__(self, root: Path) -> None:
        self.root = root

    @property
    def url(self) -> str:
        return str(self.root)

    def path(self, sha256: str) -> Path:
        return self.root / "sha256" / sha256[:2] / sha256[2:]

    def location(self, sha256: str) -> str:
        return str(self.path(sha256))

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    def size(self, sha256: str) -> int | None:
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        with open(self.path(sha256), "rb") as handle:
            while chunk := handle.read(CHUNK_SIZE):
                yield chunk

    def check_local(self, sha256: str, size: int | None = None) -> str | None:
        return self.check(sha256, size)

    def copy_to(
        self,
        sha256: str,
        destination: Path,
        label: str,
        progress: ProgressCallback | None = None,
    ) -> None:
        source = self.path(sha256)
        if not source.is_file():
            raise IntegrityError(f"{label}: its blob {sha256[:16]}... is missing from the store")
        actual = copy_hashed(source, destination, progress)
        if actual != sha256:
            destination.unlink(missing_ok=True)
            raise IntegrityError(
                f"{label}: stored bytes are corrupt (hash {actual[:16]}..., "
                f"recorded {sha256[:16]}...); run `adapters verify` for details"
            )

    def put_file(
        self,
        source: Path,
        expected: str | None = None,
        progress: ProgressCallback | None = None,
        before_commit: DigestHook | None = None,
        stamp: FileStamp | None = None,
    ) -> StoredBlob:
        """Copy ``source`` into the store, hashing while copying.

        With ``expected`` known and the blob already present, nothing is read.
        ``before_commit(sha256)`` runs once the digest is known and before the store
        looks for (or renames into) the final blob: push takes its gc lease there.
        ``stamp`` is not needed: the copy is hashed as it is written anyway.
        """
        if expected is not None and before_commit is not None:
            before_commit(expected)
        if expected is not None and self.exists(expected):
            return StoredBlob(expected, self.path(expected).stat().st_size, created=False)
        staging = self.root / "sha256" / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=staging)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as dst:
                sha256, size = write_hashed(source, dst, progress)
                dst.flush()
                os.fsync(dst.fileno())
            fault_point("push.staged")
            if before_commit is not None and sha256 != expected:
                before_commit(sha256)
            return self._commit(tmp, sha256, size, expected)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def adopt_file(
        self, source: Path, sha256: str, before_commit: DigestHook | None = None
    ) -> StoredBlob:
        """Store a file whose bytes were hashed to ``sha256`` and fsynced as they arrived
        (the server's staged uploads) by hard-linking it into place: no copy, no second
        hash. A blob already stored under ``sha256`` is kept, as ``put_file`` with
        ``expected`` does; where a link cannot be made, ``put_file`` copies and hashes."""
        if before_commit is not None:
            before_commit(sha256)
        final = self.path(sha256)
        try:
            found = final.stat()
        except FileNotFoundError:
            pass
        else:
            # The very file, linked in when it was uploaded (``link_upload``): this
            # push is the first to keep it, so its bytes count as written by it.
            mine = (found.st_ino, found.st_dev) == _inode(source)
            return StoredBlob(sha256, found.st_size, created=mine)
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, final)
        except FileExistsError:
            return StoredBlob(sha256, final.stat().st_size, created=False)
        except OSError:  # another filesystem, or links refused
            return self.put_file(source, expected=sha256)
        os.chmod(final, 0o444)  # blobs are immutable; make accidental edits fail loudly
        _fsync_directory(final.parent)
        return StoredBlob(sha256, final.stat().st_size, created=True)

    def link_upload(self, source: Path, sha256: str) -> None:
        """Link a staged upload (hashed and fsynced as it arrived) into place now, its
        directory fsynced, so that the push that names it later finds the blob stored and
        commits without a second directory fsync. Until a version references it, the
        blob is gc's to delete like any other; the push then links it again. Where no
        link can be made, nothing is done here: the push copies, as before."""
        final = self.path(sha256)
        if final.is_file():
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, final)
        except OSError:  # linked by a concurrent upload, or links refused
            return
        os.chmod(final, 0o444)
        _fsync_directory(final.parent)

    def put_bytes(self, data: bytes, before_commit: DigestHook | None = None) -> StoredBlob:
        sha256 = hashlib.sha256(data).hexdigest()
        if before_commit is not None:
            before_commit(sha256)
        if self.exists(sha256) and self.check(sha256, len(data)) is None:
            return StoredBlob(sha256, len(data), created=False)
        staging = self.root / "sha256" / "staging"
        staging.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=TMP_PREFIX, dir=staging)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as dst:
                dst.write(data)
                dst.flush()
                os.fsync(dst.fileno())
            fault_point("push.staged")
            return self._commit(tmp, sha256, len(data), sha256)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _commit(self, tmp: Path, sha256: str, size: int, expected: str | None) -> StoredBlob:
        if expected is not None and sha256 != expected:
            tmp.unlink(missing_ok=True)
            raise IntegrityError(
                f"content changed while it was being stored: expected sha256 {expected}, "
                f"got {sha256}"
            )
        final = self.path(sha256)
        repair = False
        if final.is_file():
            # Deduplicating against a blob trusts its content: re-hash it (a push has
            # just read and written every byte, so one more read of the blob is cheap;
            # docs/benchmarks.md) and, if it was edited in place, replace it with the
            # bytes just hashed, atomically.
            if self.check(sha256, size) is None:
                tmp.unlink(missing_ok=True)
                return StoredBlob(sha256, size, created=False)
            repair = True
        final.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(tmp, 0o444)  # blobs are immutable; make accidental edits fail loudly
        os.replace(tmp, final)
        _fsync_directory(final.parent)
        return StoredBlob(sha256, size, created=not repair, repaired=repair)

    def holds_any(self) -> bool:
        """Whether at least one blob is stored."""
        return next(self.iter_digests(), None) is not None

    def check(
        self, sha256: str, size: int | None = None, *, for_readers: bool = False
    ) -> str | None:
        """Re-hash one blob; return a problem sentence, or None when it is intact.
        (``for_readers`` changes nothing here: readers use the stored file itself.)"""
        path = self.path(sha256)
        if not path.is_file():
            return "blob is missing from the store"
        actual_size = path.stat().st_size
        if size is not None and actual_size != size:
            return f"blob has {actual_size} bytes, {size} recorded"
        actual = sha256_file(path)
        if actual != sha256:
            return f"blob content hashes to {actual[:16]}..., not {sha256[:16]}..."
        return None

    def iter_digests(self) -> Iterator[str]:
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for prefix in sorted(base.iterdir()):
            if len(prefix.name) != 2 or not prefix.is_dir():
                continue
            for blob in sorted(prefix.iterdir()):
                if not blob.name.startswith(TMP_PREFIX):
                    yield prefix.name + blob.name

    def iter_sizes(self) -> Iterator[tuple[str, int]]:
        """Every stored blob with its size in bytes (blobs deleted meanwhile are skipped)."""
        for sha256 in self.iter_digests():
            try:
                yield sha256, self.path(sha256).stat().st_size
            except FileNotFoundError:
                continue

    @property
    def known_digest_from(self) -> int | None:
        return None  # a put hashes while it copies: one pass either way

    def staging_files(self) -> Iterator[Path]:
        """Temp files of writes in progress, or left behind by a crash."""
        staging = self.root / "sha256" / "staging"
        if staging.is_dir():
            yield from sorted(p for p in staging.iterdir() if p.name.startswith(TMP_PREFIX))

    def delete(self, sha256: str) -> None:
        try:
            self.path(sha256).unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise RegistryError(f"cannot delete blob {sha256}: {exc}") from exc


def _fsync_directory(directory: Path) -> None:
    # Makes the rename durable; some filesystems refuse O_RDONLY fsync on dirs.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _inode(path: Path) -> tuple[int, int] | None:
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_ino, found.st_dev
