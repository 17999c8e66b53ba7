"""``BlobBackend``: the one small interface every blob store implements.

Two implementations: the local directory (``blobs.BlobStore``, the default) and
object storage (``object_blobs.ObjectBlobStore``: ``s3://``, ``gs://``, ``az://``).
Both keep the same layout (``sha256/ab/cdef...`` under their root or prefix) and the
same guarantees: a blob is visible only complete and hash-checked, identical content
is stored once, and ``before_commit`` runs before the store looks for the final blob
(push takes its gc lease there).

``path(sha256)`` is what readers mmap or copy: the blob file itself for the local
store, a verified copy in the local read-through cache for object storage.
``blob_config.open_blob_store`` picks the implementation for a home.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from registry.store.file_stamp import FileStamp
from registry.store.hashing import ProgressCallback

DigestHook = Callable[[str], None]


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    created: bool  # False when identical content was already stored
    repaired: bool = False  # the stored blob did not hash to its name; rewritten


class BlobBackend(Protocol):
    @property
    def url(self) -> str:
        """Where the blobs live, for messages (never with credentials)."""
        ...

    @property
    def known_digest_from(self) -> int | None:
        """Files of at least this many bytes are best put with their digest known
        (``expected``): the store names the upload by it and so reads an unhashed file
        twice. None when a put hashes as it copies anyway (the local store)."""
        ...

    def path(self, sha256: str) -> Path:
        """A local file holding the blob's bytes (object stores: from the cache)."""
        ...

    def location(self, sha256: str) -> str:
        """Where the blob itself lives, for messages."""
        ...

    def exists(self, sha256: str) -> bool: ...

    def size(self, sha256: str) -> int | None:
        """The stored size in bytes, or None when the blob is missing."""
        ...

    def put_file(
        self,
        source: Path,
        expected: str | None = None,
        progress: ProgressCallback | None = None,
        before_commit: DigestHook | None = None,
        stamp: FileStamp | None = None,
    ) -> StoredBlob:
        """Store ``source``; ``expected`` is its digest when already known, and ``stamp``
        what it was when hashed (file_stamp.py), which a store may check instead of
        hashing it again."""
        ...

    def put_bytes(self, data: bytes, before_commit: DigestHook | None = None) -> StoredBlob: ...

    def copy_to(
        self,
        sha256: str,
        destination: Path,
        label: str,
        progress: ProgressCallback | None = None,
    ) -> None:
        """Write the blob's bytes to the new file ``destination``, hashing them on the way;
        ``IntegrityError`` (naming ``label``) when the blob is missing or does not hash to
        its name. Object stores copy a cached copy, or on a miss stream the blob from the
        store once, into ``destination`` and the cache together."""
        ...

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        """The blob's bytes, streamed from the store itself (FileNotFoundError if missing)."""
        ...

    def check(
        self, sha256: str, size: int | None = None, *, for_readers: bool = False
    ) -> str | None:
        """Re-hash the stored blob by streaming it; a problem sentence, or None.
        ``for_readers``: readers will want the blob next, so an object store may re-hash
        it while filling its cache rather than download it twice."""
        ...

    def check_local(self, sha256: str, size: int | None = None) -> str | None:
        """Re-hash the copy ``path()`` gives readers; a problem sentence, or None."""
        ...

    def iter_digests(self) -> Iterator[str]: ...

    def holds_any(self) -> bool:
        """Whether at least one blob is stored."""
        ...

    def iter_sizes(self) -> Iterator[tuple[str, int]]: ...

    def staging_files(self) -> Iterator[Path]:
        """Local temp files of writes in progress, or left behind by a crash."""
        ...

    def delete(self, sha256: str) -> None: ...
