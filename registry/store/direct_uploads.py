"""Uploads that go from a client straight to object storage, checked before use.

A server whose blobs live on object storage need not carry every byte of a push: it
hands the client a pre-signed PUT URL per file (``sign_uploads``), valid for
``url_lifetime()`` (``ADAPTERS_UPLOAD_URL_SECONDS``, else an hour), for a key of its own
under ``PREFIX/incoming/<random>/<sha256>``, never for a blob's key. When the client
says it is done, ``adopt_upload`` trusts nothing it sent: it first copies the object
(server-side) to a key the client holds no URL for, so the client can no longer change
it, then streams that copy into the server's local staging file while hashing it (the
file the push's format checks read), and only when the hash is the one named copies it
to the blob's content address. The pushed version
is recorded by the ordinary push afterwards, which finds the blob already stored.

On a hash mismatch nothing reaches a blob key and the local file is not kept. Objects
left under ``incoming/`` by clients that never finished are not blobs (no listing of
blobs sees them); ``remove_stale`` (run by gc) deletes those older than a lease lives.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeGuard

from registry.errors import ArgumentError, IntegrityError
from registry.store.blob_store import BlobBackend
from registry.store.object_blobs import ObjectBlobStore

EXPIRES = timedelta(hours=1)
EXPIRES_ENV = "ADAPTERS_UPLOAD_URL_SECONDS"
_LONGEST = timedelta(days=7)  # S3 signs URLs for at most a week
MAX_SIZE = 5 * 1024**3  # one PUT holds at most 5 GiB on S3; larger files go through the server
_INCOMING = "incoming"
_TOKEN = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class UploadTicket:
    sha256: str
    url: str  # pre-signed PUT, carries its own authorisation
    key: str  # where the client's bytes land, to name when claiming them


def url_lifetime() -> timedelta:
    """How long a pre-signed upload URL stays valid: ``ADAPTERS_UPLOAD_URL_SECONDS``."""
    raw = os.environ.get(EXPIRES_ENV, "").strip()
    if not raw:
        return EXPIRES
    try:
        lifetime = timedelta(seconds=int(raw))
    except (ValueError, OverflowError):
        lifetime = timedelta(0)
    if not timedelta(seconds=1) <= lifetime <= _LONGEST:
        raise ArgumentError(
            f"{EXPIRES_ENV}={raw} is not a number of seconds from 1 to "
            f"{int(_LONGEST.total_seconds())}; fix or unset it"
        )
    return lifetime


def can_sign(blobs: BlobBackend) -> TypeGuard[ObjectBlobStore]:
    """Whether clients may PUT to pre-signed URLs of this store: S3 only. Azure's Put Blob
    also wants an ``x-ms-blob-type`` header a plain PUT lacks (400), and GCS is untested;
    clients of those send the bytes through the server."""
    return isinstance(blobs, ObjectBlobStore) and blobs.scheme == "s3"


def _incoming_root(blobs: ObjectBlobStore) -> str:
    return f"{blobs.prefix}/{_INCOMING}/" if blobs.prefix else f"{_INCOMING}/"


def sign_uploads(blobs: ObjectBlobStore, digests: list[str]) -> list[UploadTicket]:
    import obstore

    lifetime = url_lifetime()

    def ticket(sha256: str) -> UploadTicket:
        key = f"{_incoming_root(blobs)}{secrets.token_hex(16)}/{sha256}"
        url = blobs._call(
            "sign an upload URL", lambda: obstore.sign(blobs.store, "PUT", key, lifetime)
        )
        return UploadTicket(sha256, str(url), key)

    return [ticket(sha256) for sha256 in digests]


def adopt_upload(
    blobs: ObjectBlobStore, key: str, sha256: str, local: Path, max_size: int = MAX_SIZE
) -> int:
    """Check the client's object ``key`` holds ``sha256`` and make it that blob; leaves the
    verified bytes at ``local`` too. Returns the size; ``IntegrityError`` on a mismatch,
    ``ArgumentError`` over ``max_size`` bytes (a pre-signed PUT cannot be limited)."""
    import obstore

    root = _incoming_root(blobs)
    token, _, named = key[len(root) :].partition("/") if key.startswith(root) else ("", "", "")
    if not _TOKEN.fullmatch(token) or named != sha256:
        raise ArgumentError("the upload key is not one this server signed for this sha256")
    frozen = f"{root}{token}/.checking-{secrets.token_hex(8)}"
    try:
        blobs._call("copy an upload", lambda: obstore.copy(blobs.store, key, frozen))
    except FileNotFoundError:
        raise ArgumentError(
            f"nothing was uploaded for {sha256[:16]}...; upload it to the signed URL first"
        ) from None
    try:
        with contextlib.suppress(FileNotFoundError):
            blobs._call("delete an upload", lambda: obstore.delete(blobs.store, key))
        # The frozen copy no client can write: its size is the one that gets streamed.
        meta: Any = blobs._call("read an upload", lambda: obstore.head(blobs.store, frozen))
        if int(meta["size"]) > max_size:
            raise ArgumentError(
                f"the upload of {sha256[:16]}... is over the server's {max_size}-byte limit "
                "for a file; nothing was kept"
            )
        size = _download_checked(blobs, frozen, sha256, local)
        if not blobs.exists(sha256):
            blobs._call(
                "store an upload", lambda: obstore.copy(blobs.store, frozen, blobs.key(sha256))
            )
    finally:
        with contextlib.suppress(FileNotFoundError):
            blobs._call("delete an upload", lambda: obstore.delete(blobs.store, frozen))
    return size


def _download_checked(blobs: ObjectBlobStore, key: str, sha256: str, local: Path) -> int:
    import obstore

    handle, name = tempfile.mkstemp(prefix=".part-", dir=local.parent)
    digest = hashlib.sha256()
    size = 0
    try:
        result: Any = blobs._call("read an upload", lambda: obstore.get(blobs.store, key))
        with os.fdopen(handle, "wb") as out:
            try:
                for chunk in result.stream(min_chunk_size=8 * 1024**2):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
            except Exception as exc:  # obstore's errors, as one line
                blobs._fail("read an upload", exc)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != sha256:
            raise IntegrityError(
                "the uploaded bytes do not hash to the sha256 named; upload them again"
            )
        os.replace(name, local)
    finally:
        if os.path.exists(name):
            os.unlink(name)
    return size


def remove_stale(blobs: ObjectBlobStore, older_than: timedelta, *, dry_run: bool) -> int:
    """Delete objects under ``incoming/`` last written before ``older_than`` ago: uploads a
    client started and never claimed (a claim finishes in one request). How many."""
    import obstore

    cutoff = time.time() - older_than.total_seconds()
    stream = blobs._call(
        "list uploads", lambda: obstore.list(blobs.store, prefix=_incoming_root(blobs))
    )
    stale: list[str] = []
    try:
        for batch in stream:
            stale += [m["path"] for m in batch if m["last_modified"].timestamp() < cutoff]
    except FileNotFoundError:
        return 0
    except Exception as exc:  # obstore's errors, as one line
        blobs._fail("list uploads", exc)
    if not dry_run:
        for key in stale:
            _delete(blobs, key)
    return len(stale)


def _delete(blobs: ObjectBlobStore, key: str) -> None:
    import obstore

    with contextlib.suppress(FileNotFoundError):
        blobs._call("delete an upload", lambda: obstore.delete(blobs.store, key))
