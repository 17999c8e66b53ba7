"""``BlobBackend``: the one small interface every blob store implements.

Two implementations: the local directory (``blobs.BlobStore``, the default) and
object storage (``object_blobs.ObjectBlobStore``: ``s3://``, ``gs://``, ``az://``).
Both keep the same layout (``sha256/ab/cdef...`` under their root or prefix) and the
same guarantees: a blob is visible only complete and hash-checked, identical content
is stored once, and ``before_commit`` runs before the store looks for the final blob
(push takes its gc lease there).

``path(sha256)`` is what readers mmap or copy: the blob file itself for the local
store, a verified copy in the local read-through cache for object storage.
``open_blob_store`` picks the implementation from ``ADAPTERS_BLOB_URL`` or the
home's ``registry.json`` (key ``blob_url``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from registry.store.hashing import ProgressCallback

if TYPE_CHECKING:
    from registry.store.home import RegistryHome

DigestHook = Callable[[str], None]


@dataclass(frozen=True)
class StoredBlob:
    sha256: str
    size: int
    created: bool  # False when identical content was already stored


class BlobBackend(Protocol):
    @property
    def url(self) -> str:
        """Where the blobs live, for messages (never with credentials)."""
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
    ) -> StoredBlob: ...

    def put_bytes(self, data: bytes, before_commit: DigestHook | None = None) -> StoredBlob: ...

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        """The blob's bytes, streamed from the store itself (FileNotFoundError if missing)."""
        ...

    def check(self, sha256: str, size: int | None = None) -> str | None:
        """Re-hash the stored blob by streaming it; a problem sentence, or None."""
        ...

    def check_local(self, sha256: str, size: int | None = None) -> str | None:
        """Re-hash the copy ``path()`` gives readers; a problem sentence, or None."""
        ...

    def iter_digests(self) -> Iterator[str]: ...

    def iter_sizes(self) -> Iterator[tuple[str, int]]: ...

    def staging_files(self) -> Iterator[Path]:
        """Local temp files of writes in progress, or left behind by a crash."""
        ...

    def delete(self, sha256: str) -> None: ...


BLOB_URL_ENV = "ADAPTERS_BLOB_URL"
OBJECT_SCHEMES = ("s3://", "gs://", "az://")


def blob_url_for(home: RegistryHome) -> str | None:
    """The configured blob store URL: ``ADAPTERS_BLOB_URL``, else ``registry.json``."""
    import os

    url = os.environ.get(BLOB_URL_ENV)
    if url:
        return url
    return home.settings().get("blob_url") or None


def open_blob_backend(url: str | None, home: RegistryHome) -> BlobBackend:
    """The blob store at ``url``: a local directory (the home's ``objects/`` when None)
    or object storage."""
    from registry.errors import ArgumentError
    from registry.store.blobs import BlobStore

    if url is None:
        return BlobStore(home.objects_dir)
    if url.startswith(OBJECT_SCHEMES):
        from registry.store.blob_cache import BlobCache
        from registry.store.object_blobs import ObjectBlobStore

        return ObjectBlobStore(url, BlobCache.for_home(home))
    if "://" in url and not url.startswith("file://"):
        raise ArgumentError(
            f"blob store URL {url.split('://')[0]}://... is not supported; use a local path, "
            "s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX"
        )
    path = Path(url.removeprefix("file://")).expanduser()
    if not path.is_absolute():
        path = home.root / path
    return BlobStore(path)


def open_blob_store(home: RegistryHome) -> BlobBackend:
    return open_blob_backend(blob_url_for(home), home)
