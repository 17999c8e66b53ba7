"""Which blob store a home uses: ``ADAPTERS_BLOB_URL``, else ``blob_url`` in the
home's ``registry.json``, else the home's ``objects/`` directory.

The URL is a local path (relative paths are taken from the home) or
``s3://BUCKET/PREFIX``, ``gs://BUCKET/PREFIX``, ``az://CONTAINER/PREFIX``; it never
carries credentials, which come from each cloud's own environment.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from registry.errors import ArgumentError
from registry.store.blob_store import BlobBackend
from registry.store.home import RegistryHome

BLOB_URL_ENV = "ADAPTERS_BLOB_URL"
OBJECT_SCHEMES = ("s3://", "gs://", "az://")
# ``s3:/bucket`` or ``gs:bucket`` (a slash short): without this it would be a local
# directory of that name under the home, and the blobs would silently stay on this machine.
_SCHEME_LIKE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:")


def blob_url_for(home: RegistryHome) -> str | None:
    """The configured blob store URL: ``ADAPTERS_BLOB_URL``, else ``registry.json``."""
    # Surrounding whitespace (a value pasted or read from a file) would otherwise become
    # part of the prefix: another, empty store.
    url = os.environ.get(BLOB_URL_ENV, "").strip()
    if url:
        return url
    return home.settings().get("blob_url", "").strip() or None


def overridden_blob_url(home: RegistryHome) -> str | None:
    """A one-line note when ``ADAPTERS_BLOB_URL`` overrides a different ``blob_url`` in
    the home's ``registry.json`` (the variable wins), for doctor; else None."""
    url = os.environ.get(BLOB_URL_ENV, "").strip()
    configured = home.settings().get("blob_url", "").strip()
    if not url or not configured or url.rstrip("/") == configured.rstrip("/"):
        return None
    return f"{BLOB_URL_ENV}={url} overrides blob_url {configured} in {home.root / 'registry.json'}"


def open_blob_backend(url: str | None, home: RegistryHome) -> BlobBackend:
    """The blob store at ``url``: a local directory (the home's ``objects/`` when None)
    or object storage."""
    from registry.store.blobs import BlobStore

    if url is None:
        return BlobStore(home.objects_dir)
    if url[:5].lower().startswith(OBJECT_SCHEMES):
        try:
            import obstore  # noqa: F401
        except ImportError:
            from registry.errors import BlobStoreError

            raise BlobStoreError(
                "object storage needs the obstore library: "
                "pip install 'adapter-registry[object-store]'"
            ) from None
        from registry.store.blob_cache import BlobCache
        from registry.store.object_blobs import ObjectBlobStore

        return ObjectBlobStore(url, BlobCache.for_home(home))
    if url[:7].lower() == "file://":
        url = url[7:]
    elif "://" in url or _SCHEME_LIKE.match(url):
        raise ArgumentError(
            f"blob store URL {url.split(':')[0]}:... is not supported; use a local path "
            "(./NAME for a directory with a colon in its name), "
            "s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or az://CONTAINER/PREFIX"
        )
    path = Path(url).expanduser()
    if not path.is_absolute():
        path = home.root / path
    return BlobStore(path)


def open_blob_store(home: RegistryHome) -> BlobBackend:
    return open_blob_backend(blob_url_for(home), home)


def absolute_location(url: str) -> str:
    """A blob store named on the command line or to the API: a relative local path is
    taken from the current directory (a configured ``blob_url`` is taken from the home)."""
    if url[:5].lower().startswith(OBJECT_SCHEMES) or "://" in url or _SCHEME_LIKE.match(url):
        return url
    return str(Path(url).expanduser().absolute())
