"""Probing a blob store: reachable, listable, and (on request) a canary written, read
back and deleted, for ``adapters doctor --write-check``; and an object store's local read
cache writable."""

from __future__ import annotations

import hashlib
import uuid

from registry.errors import RegistryError
from registry.store.blob_cache import BlobCache
from registry.store.blob_store import BlobBackend


def probe_blob_store(blobs: BlobBackend, *, write: bool = False) -> list[str]:
    """Problems found, each one line saying what to do; empty when the store works."""
    try:
        next(iter(blobs.iter_sizes()), None)
    except RegistryError as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"cannot list the blob store {blobs.url}: {exc.strerror or exc}"]
    if not write:
        return []
    canary = f"adapters doctor write check {uuid.uuid4().hex}\n".encode()
    sha256 = hashlib.sha256(canary).hexdigest()
    try:
        stored = blobs.put_bytes(canary)
        try:
            back = b"".join(blobs.iter_chunks(stored.sha256))
            if back != canary:
                return [f"{blobs.url} returned other bytes than were written; check the store"]
        finally:
            blobs.delete(sha256)
        if blobs.exists(sha256):
            return [f"{blobs.url} kept a deleted object; check the delete permission"]
    except RegistryError as exc:
        return [str(exc)]
    except OSError as exc:
        return [f"cannot write to the blob store {blobs.url}: {exc.strerror or exc}"]
    return []


def probe_cache(blobs: BlobBackend) -> str | None:
    """Why an object store's local read cache cannot take new entries, or None. Every read
    goes through it; a read-only one still serves what it holds, so this is no reason to
    stop checking the store."""
    cache = getattr(blobs, "cache", None)
    return cache.check_writable() if isinstance(cache, BlobCache) else None
