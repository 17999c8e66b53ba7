"""Blobs on object storage (``s3://BUCKET/PREFIX``, ``gs://...``, ``az://...``).

Built on obstore (the Rust ``object_store`` crate): one library for S3, GCS and
Azure, synchronous, with retries of 5xx replies (503 SlowDown included) and dropped
connections built in; docs/architecture.md says why it was chosen.

Same layout and guarantees as the local store:

- keys ``PREFIX/sha256/ab/cdef...``;
- a put hashes the source first, then takes the gc lease (``before_commit``), then
  looks for the blob, and only then uploads. An object becomes visible only when its
  upload completes, so readers never see a partial blob. Given the digest already
  (push hashes large files beside its format checks), a large put skips that first
  pass: the hashing reader it uploads through is the check;
- small blobs go up in one PUT with ``If-None-Match: *`` (conditional create: a
  concurrent push of the same blob gets 412 and keeps the one stored) and with the
  server-checked ``x-amz-checksum-sha256`` on S3;
- large blobs go up as parallel multipart uploads (memory bounded by
  ``PART_SIZE * PART_CONCURRENCY``) read through a reader that hashes the bytes it
  hands out and refuses at the end if they are not the hashed content, which aborts
  the upload before it completes. A file whose ``FileStamp`` push took before hashing
  it (settled, unchanged while hashed) goes up without that second hash: after its
  last byte is read the file must still have the stamp, or the upload is aborted the
  same way (file_stamp.py). Conditional create does not apply to multipart uploads,
  and need not: two pushes of one digest write identical bytes;
- reads of blobs over ``READ_CHUNK`` are parallel ranged GETs handed on in order
  (object_transfer.py), hashed by the reader as they arrive.

Credentials come from each cloud's own chain (``AWS_*`` variables, ``AWS_PROFILE``
through boto3 when installed, ``GOOGLE_*``, ``AZURE_*``); nothing here stores or
prints them. Errors become one-line ``BlobStoreError``s with secrets removed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, NoReturn, TypeVar

from registry.errors import BlobStoreError, IntegrityError
from registry.faults import fault_point
from registry.store.blob_cache import BlobCache
from registry.store.blob_store import DigestHook, StoredBlob
from registry.store.file_stamp import FileStamp
from registry.store.hashing import ProgressCallback, sha256_file
from registry.store.object_transfer import (
    CheckedReader,
    StampedParts,
    put_multipart,
    ranged_chunks,
)
from registry.store.object_transfer import read_ahead as _read_ahead
from registry.store.object_url import parse_object_url

SINGLE_PUT_LIMIT = 32 * 1024**2  # above this, multipart (a single PUT holds the blob in memory)
PART_SIZE = 16 * 1024**2
PART_CONCURRENCY = 8
READ_CHUNK = 8 * 1024**2  # also the size of one ranged GET
READ_AHEAD = 4  # chunks downloaded while the reader hashes and writes the previous ones
RANGES_IN_FLIGHT = 8  # a blob over READ_CHUNK comes as this many ranged GETs at once
RETRIES_ENV = "ADAPTERS_BLOB_RETRY_SECONDS"
_KEY = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{62})")
_SECRET_VARS = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_KEY",
    "AZURE_CLIENT_SECRET",
    "GOOGLE_SERVICE_ACCOUNT_KEY",
)

T = TypeVar("T")


_MISSING_BUCKET = ("NoSuchBucket", "ContainerNotFound")  # S3 and GCS's XML API; Azure
# What to check when the store refuses the credentials, per cloud.
_CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile) and the bucket's",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT_KEY) and the bucket's",
    "az": (
        "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_KEY, "
        "or AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET) and the container's"
    ),
}
# What to set when the store cannot even be reached for lack of a setting, per cloud.
_SETTINGS = {
    "s3": (
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), AWS_REGION and "
        "AWS_ENDPOINT_URL"
    ),
    "gs": "GOOGLE_APPLICATION_CREDENTIALS (or GOOGLE_SERVICE_ACCOUNT_KEY)",
    "az": (
        "AZURE_STORAGE_ACCOUNT_NAME with AZURE_STORAGE_ACCOUNT_KEY (or AZURE_STORAGE_SAS_KEY), "
        "and AZURE_STORAGE_ENDPOINT for an emulator"
    ),
}
_ENDPOINTS = {
    "s3": ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    "az": ("AZURE_STORAGE_ENDPOINT", "AZURE_ENDPOINT"),
}


def _retry_config() -> Any:
    seconds = float(os.environ.get(RETRIES_ENV, "120"))
    return {
        "max_retries": 10 if seconds > 0 else 0,
        "retry_timeout": timedelta(seconds=seconds),
        "backoff": {
            "init_backoff": timedelta(milliseconds=100),
            "base": 2.0,
            "max_backoff": timedelta(seconds=15),
        },
    }


def _make_store(scheme: str, bucket: str) -> Any:
    from obstore.store import AzureStore, GCSStore, S3Store

    client: Any = {"connect_timeout": timedelta(seconds=10), "timeout": timedelta(minutes=10)}
    if scheme == "gs":
        return GCSStore(bucket, client_options=client, retry_config=_retry_config())
    if scheme == "az":
        # obstore reads the AZURE_* chain itself, but client options given here replace
        # the environment's, so an http:// endpoint (Azurite, a proxy) must be allowed here.
        endpoint = os.environ.get("AZURE_STORAGE_ENDPOINT") or os.environ.get("AZURE_ENDPOINT")
        if endpoint and endpoint.startswith("http://"):
            client["allow_http"] = True
        return AzureStore(bucket, client_options=client, retry_config=_retry_config())
    config: dict[str, Any] = {"checksum_algorithm": "sha256"}
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        config["endpoint"] = endpoint
        config["virtual_hosted_style_request"] = False
        if endpoint.startswith("http://"):
            client["allow_http"] = True
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    config["region"] = region or "us-east-1"
    provider = None
    if os.environ.get("AWS_PROFILE") and not os.environ.get("AWS_ACCESS_KEY_ID"):
        try:
            from obstore.auth.boto3 import Boto3CredentialProvider
        except ImportError as exc:
            raise BlobStoreError(
                "AWS_PROFILE is set but reading profiles needs boto3: pip install boto3, "
                "or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from exc
        try:
            provider = Boto3CredentialProvider()
        except Exception as exc:  # botocore's ProfileNotFound and the like: a setting
            raise BlobStoreError(
                f"AWS_PROFILE={os.environ['AWS_PROFILE']}: {_one_line(str(exc))}; fix "
                "AWS_PROFILE (or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE)"
            ) from None
    return S3Store(
        bucket,
        config=config,  # type: ignore[arg-type]
        client_options=client,
        retry_config=_retry_config(),
        credential_provider=provider,
    )


class ObjectBlobStore:
    """A ``BlobBackend`` on object storage; readers get local files from ``cache``."""

    def __init__(self, url: str, cache: BlobCache) -> None:
        self.scheme, self.bucket, self.prefix = parse_object_url(url)
        self.cache = cache
        self._store: Any = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")

    @property
    def store(self) -> Any:
        if self._store is None:  # built on first use: opening a registry stays offline
            self._store = _make_store(self.scheme, self.bucket)
        return self._store

    @property
    def known_digest_from(self) -> int | None:
        return SINGLE_PUT_LIMIT + 1  # smaller blobs are read into memory and hashed there

    def key(self, sha256: str) -> str:
        tail = f"sha256/{sha256[:2]}/{sha256[2:]}"
        return f"{self.prefix}/{tail}" if self.prefix else tail

    def location(self, sha256: str) -> str:
        return f"{self.url}/sha256/{sha256[:2]}/{sha256[2:]}"

    def _call(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except FileNotFoundError as exc:
            # A 404 is a missing object, unless it names the bucket (a PUT or GET into a
            # container that does not exist): that must not read as "push again".
            if any(code in str(exc) for code in _MISSING_BUCKET):
                raise BlobStoreError(self._no_bucket()) from None
            raise
        except Exception as exc:  # obstore raises its own tree; all become one line
            self._fail(what, exc)

    def _fail(self, what: str, exc: BaseException) -> NoReturn:
        from obstore import exceptions as obx

        if isinstance(exc, IntegrityError | BlobStoreError):
            raise exc
        detail = _one_line(str(exc))
        full = str(exc)
        if isinstance(exc, obx.UnauthenticatedError | obx.PermissionDeniedError) or (
            "403 Forbidden" in full
            or "InvalidAccessKeyId" in full
            or "SignatureDoesNotMatch" in full
        ):
            raise BlobStoreError(
                f"{self.url} refused the credentials while trying to {what}: check "
                f"{_CREDENTIALS.get(self.scheme, _CREDENTIALS['s3'])} permissions"
            ) from None
        if any(code in full for code in _MISSING_BUCKET) or (
            what == "list blobs" and "404 Not Found" in full
        ):
            raise BlobStoreError(self._no_bucket()) from None
        if "400 Bad Request" in full:
            raise BlobStoreError(
                f"{self.url} refused the request to {what} as malformed (400 Bad Request): "
                f"check the {self._bucket_kind} name in ADAPTERS_BLOB_URL{self._endpoint_note()}"
            ) from None
        if "Error performing" not in full:  # no request was made: the setup is incomplete
            raise BlobStoreError(
                f"{self.url} is not configured ({detail}): set {_SETTINGS[self.scheme]}"
            ) from None
        raise BlobStoreError(
            f"{self.url}: could not {what} ({detail}); check that the store is reachable and retry"
        ) from None

    @property
    def _bucket_kind(self) -> str:
        return "container" if self.scheme == "az" else "bucket"

    def _endpoint_note(self) -> str:
        """`` (and AWS_ENDPOINT_URL=...)`` when a custom endpoint is set: a wrong one (a
        path after the host) reads as a missing bucket."""
        variables = _ENDPOINTS.get(self.scheme, ())
        name = next((var for var in variables if os.environ.get(var)), None)
        if name is None:
            return ""
        endpoint = re.sub(r"//[^/@]*@", "//", os.environ[name])  # no user:password@
        return f" (and {name}={endpoint})"

    def _no_bucket(self) -> str:
        return (
            f"{self._bucket_kind} {self.bucket!r} does not exist at {self.scheme}://; create "
            f"it or fix ADAPTERS_BLOB_URL (or blob_url in registry.json){self._endpoint_note()}"
        )

    def _head(self, sha256: str) -> int | None:
        import obstore

        try:
            meta = self._call("look up a blob", lambda: obstore.head(self.store, self.key(sha256)))
        except FileNotFoundError:
            return None
        return int(meta["size"])

    def exists(self, sha256: str) -> bool:
        return self._head(sha256) is not None

    def size(self, sha256: str) -> int | None:
        return self._head(sha256)

    def put_file(
        self,
        source: Path,
        expected: str | None = None,
        progress: ProgressCallback | None = None,
        before_commit: DigestHook | None = None,
        stamp: FileStamp | None = None,
    ) -> StoredBlob:
        if expected is not None and before_commit is not None:
            before_commit(expected)
        size = source.stat().st_size
        damaged = False  # an object of the wrong size at the key: replaced, not trusted
        if expected is not None:
            stored, damaged = self._existing(expected, size, progress)
            if stored is not None:
                return stored
            if size > SINGLE_PUT_LIMIT:
                # Leased and looked for under ``expected``: upload straight to its key
                # through the hashing reader, which refuses (aborting the upload) unless
                # the bytes hash to it, or, given the stamp, proving the file unchanged.
                # No separate pass over the file first.
                return self._put_large(source, expected, size, progress, stamp)
        sha256 = sha256_file(source)
        if expected is not None and sha256 != expected:
            raise IntegrityError(
                f"content changed while it was being stored: expected sha256 {expected}, "
                f"got {sha256}"
            )
        if before_commit is not None and sha256 != expected:
            before_commit(sha256)
        if expected is None:
            stored, damaged = self._existing(sha256, size, progress)
            if stored is not None:
                return stored
        if size <= SINGLE_PUT_LIMIT:
            data = source.read_bytes()
            if hashlib.sha256(data).hexdigest() != sha256:
                raise IntegrityError(f"{source} changed while it was being stored; push again")
            created = self._put_small(sha256, data, replace=damaged)
            if progress is not None:
                progress(size)
        else:
            return self._put_large(source, sha256, size, progress)
        fault_point("object.uploaded")
        return StoredBlob(sha256, size, created=created)

    def _existing(
        self, sha256: str, size: int, progress: ProgressCallback | None
    ) -> tuple[StoredBlob | None, bool]:
        """The blob already stored under ``sha256`` with ``size`` bytes (its bytes counted
        as progress), else None; and whether an object of another size holds the key (a
        damaged or foreign write, for the put to replace rather than trust)."""
        found = self._head(sha256)
        if found == size:
            if progress is not None:
                progress(size)
            return StoredBlob(sha256, found, created=False), False
        return None, found is not None

    def _put_large(
        self,
        source: Path,
        sha256: str,
        size: int,
        progress: ProgressCallback | None,
        stamp: FileStamp | None = None,
    ) -> StoredBlob:
        with open(source, "rb") as handle:
            reader: CheckedReader | StampedParts
            if stamp is not None and FileStamp.of_descriptor(handle.fileno()) == stamp:
                reader = StampedParts(handle, stamp, PART_SIZE, progress, str(source))
            else:  # no stamp, or the file changed or was replaced since: hash it again
                reader = CheckedReader(handle, sha256, size, progress, str(source))
            try:
                self._call(
                    "upload a blob",
                    lambda: put_multipart(
                        self.store, self.key(sha256), reader, PART_SIZE, PART_CONCURRENCY
                    ),
                )
            except BlobStoreError:
                if reader.failure is not None:  # the upload was aborted for this
                    raise reader.failure from None
                raise
        fault_point("object.uploaded")
        return StoredBlob(sha256, size, created=True)

    def _put_small(self, sha256: str, data: bytes, replace: bool = False) -> bool:
        """Create the blob; ``replace``: overwrite what is at its key, which is damaged
        (the bytes given are the ones the key names, so every writer writes the same)."""
        import obstore
        from obstore.exceptions import AlreadyExistsError, PreconditionError

        mode: Literal["create", "overwrite"] = "overwrite" if replace else "create"
        try:
            self._call(
                "upload a blob",
                lambda: obstore.put(self.store, self.key(sha256), data, mode=mode),
            )
        except BlobStoreError as exc:
            if isinstance(exc.__context__, AlreadyExistsError | PreconditionError):
                return False  # a concurrent push stored the same bytes first
            raise
        return True

    def put_bytes(self, data: bytes, before_commit: DigestHook | None = None) -> StoredBlob:
        sha256 = hashlib.sha256(data).hexdigest()
        if before_commit is not None:
            before_commit(sha256)
        stored, damaged = self._existing(sha256, len(data), None)
        if stored is not None:
            return stored
        created = self._put_small(sha256, data, replace=damaged)
        fault_point("object.uploaded")
        return StoredBlob(sha256, len(data), created=created)

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        import obstore

        size = self._head(sha256)
        if size is None:
            raise FileNotFoundError(self.key(sha256))
        if size > READ_CHUNK:
            yield from self._iter_ranges(sha256, size)
            return
        result = self._call("read a blob", lambda: obstore.get(self.store, self.key(sha256)))
        stream = result.stream(min_chunk_size=READ_CHUNK)
        while True:
            try:
                chunk = self._call("read a blob", lambda: next(stream, None))
            except FileNotFoundError:
                raise
            if chunk is None:
                return
            # obstore's Bytes is a buffer that hashlib, file writes and join take as is;
            # copying each chunk into bytes would cost a pass over the data.
            yield chunk
            fault_point("object.reading")

    def _iter_ranges(self, sha256: str, size: int) -> Iterator[bytes]:
        import obstore

        key = self.key(sha256)

        def fetch(start: int, end: int) -> Any:
            return self._call(
                "read a blob", lambda: obstore.get_range(self.store, key, start=start, end=end)
            )

        for chunk in ranged_chunks(fetch, size, READ_CHUNK, RANGES_IN_FLIGHT):
            yield chunk  # obstore's Bytes, a buffer (see above)
            fault_point("object.reading")

    def _chunks(self, sha256: str) -> Callable[[], Iterator[bytes]]:
        def chunks() -> Iterator[bytes]:
            try:
                yield from _read_ahead(self.iter_chunks(sha256), READ_AHEAD)
            except FileNotFoundError:
                raise IntegrityError(
                    f"blob {sha256[:16]}... is missing from {self.url}; push the adapter "
                    "again or restore the blob, then `adapters verify`"
                ) from None

        return chunks

    def path(self, sha256: str) -> Path:
        return self.cache.fetch(
            sha256, self._chunks(sha256), f"blob {sha256[:16]}... from {self.url}"
        )

    def copy_to(
        self,
        sha256: str,
        destination: Path,
        label: str,
        progress: ProgressCallback | None = None,
    ) -> None:
        self.cache.copy_out(
            sha256, self._chunks(sha256), f"{label} (blob {sha256[:16]}... from {self.url})",
            destination, progress,
        )  # fmt: skip

    def check(
        self, sha256: str, size: int | None = None, *, for_readers: bool = False
    ) -> str | None:
        actual_size = self._head(sha256)
        if actual_size is None:
            return "blob is missing from the store"
        if size is not None and actual_size != size:
            return f"blob has {actual_size} bytes, {size} recorded"
        if for_readers and not self.cache.path(sha256).exists():
            # The fill hashes what it downloads: the re-hash, and the copy readers use
            # next (verify's format check), in one download instead of two.
            with contextlib.suppress(IntegrityError):  # streamed again below, for the detail
                self.path(sha256)
                return None
        digest = hashlib.sha256()
        try:
            for chunk in self.iter_chunks(sha256):
                digest.update(chunk)
        except FileNotFoundError:
            return "blob is missing from the store"
        actual = digest.hexdigest()
        if actual != sha256:
            return f"blob content hashes to {actual[:16]}..., not {sha256[:16]}..."
        return None

    def check_local(self, sha256: str, size: int | None = None) -> str | None:
        """Fill the cache (hash-checked) if needed, then re-hash the cached copy; a
        damaged cached copy is dropped and fetched once more."""
        for _attempt in range(2):
            try:
                path = self.path(sha256)
            except IntegrityError as exc:
                return str(exc)
            if size is not None and path.stat().st_size != size:
                problem: str | None = f"blob has {path.stat().st_size} bytes, {size} recorded"
            else:
                actual = sha256_file(path)
                problem = None if actual == sha256 else "cached copy is corrupt"
            if problem is None:
                return None
            self.cache.discard(sha256)
        return problem

    def iter_sizes(self) -> Iterator[tuple[str, int]]:
        for sha256, size, _modified in self.iter_listing():
            yield sha256, size

    def iter_listing(self) -> Iterator[tuple[str, int, float]]:
        """Every stored blob with its size and the store's last-modified time (epoch)."""
        import obstore

        root = f"{self.prefix}/sha256/" if self.prefix else "sha256/"
        stream = self._call("list blobs", lambda: obstore.list(self.store, prefix=root))
        while True:
            try:
                batch = self._call("list blobs", lambda: next(stream, None))
            except FileNotFoundError:
                raise BlobStoreError(self._no_bucket()) from None
            if batch is None:
                return
            for meta in batch:
                match = _KEY.fullmatch(meta["path"][len(root) - len("sha256/") :])
                if match is not None:
                    modified = meta["last_modified"].timestamp()
                    yield match.group(1) + match.group(2), int(meta["size"]), modified

    def holds_any(self) -> bool:
        return next(self.iter_digests(), None) is not None

    def iter_digests(self) -> Iterator[str]:
        for sha256, _size in self.iter_sizes():
            yield sha256

    def staging_files(self) -> Iterator[Path]:
        return iter(())  # uploads stage nothing locally

    def delete(self, sha256: str) -> None:
        import obstore

        with contextlib.suppress(FileNotFoundError):
            self._call("delete a blob", lambda: obstore.delete(self.store, self.key(sha256)))


def abort_stale_uploads(store: ObjectBlobStore, older_than: timedelta, *, dry_run: bool) -> int:
    """Abort multipart uploads under the store's prefix started before ``older_than`` ago
    (left by a push killed mid-upload); how many. S3 only, through boto3 when installed:
    obstore cannot list uploads. Elsewhere a bucket lifecycle rule does this."""
    if store.scheme != "s3":
        return 0
    try:
        import boto3
    except ImportError:
        return 0
    from datetime import datetime, timezone

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    client = boto3.client("s3", endpoint_url=endpoint or None)
    root = f"{store.prefix}/sha256/" if store.prefix else "sha256/"
    cutoff = datetime.now(timezone.utc) - older_than
    count = 0
    try:
        pages = client.get_paginator("list_multipart_uploads").paginate(
            Bucket=store.bucket, Prefix=root
        )
        for page in pages:
            for upload in page.get("Uploads", []):
                if upload["Initiated"] > cutoff:
                    continue  # may be a push still uploading
                count += 1
                if not dry_run:
                    client.abort_multipart_upload(
                        Bucket=store.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
    except Exception as exc:  # botocore's errors; gc's other work stands
        raise BlobStoreError(
            f"{store.url}: could not clean incomplete uploads ({_one_line(str(exc))}); "
            "add a lifecycle rule that aborts them"
        ) from None
    return count


def _one_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else "no detail"
    for var in _SECRET_VARS:
        secret = os.environ.get(var)
        if secret and len(secret) >= 4:
            first = first.replace(secret, "***")
    return first[:300]
