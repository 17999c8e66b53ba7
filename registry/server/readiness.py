"""``/readyz``: whether the server can do its work, that is reach its catalog and its
blob store; else one line naming which cannot be reached (details go to the log)."""

from __future__ import annotations

import logging
import os

from sqlalchemy import text

from registry.api import Registry
from registry.store.blob_probe import probe_blob_store
from registry.store.blobs import BlobStore

_log = logging.getLogger("registry.server")


def not_ready(registry: Registry) -> str | None:
    """None when ready, else the one-line reason."""
    try:
        with registry.catalog.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        _log.warning("readiness: the catalog cannot be reached: %s", type(exc).__name__)
        return "the catalog cannot be reached"
    blobs = registry.blobs
    # A local store is ready when its directory is there and usable (an unmounted or
    # unreadable volume is not, though listing an empty directory would succeed).
    if isinstance(blobs, BlobStore) and not (
        blobs.root.is_dir() and os.access(blobs.root, os.R_OK | os.W_OK | os.X_OK)
    ):
        return "the blob store cannot be reached"
    try:
        problems = probe_blob_store(blobs)
    except Exception as exc:
        _log.warning("readiness: the blob store cannot be reached: %s", type(exc).__name__)
        return "the blob store cannot be reached"
    if problems:
        _log.warning("readiness: the blob store cannot be reached")
        return "the blob store cannot be reached"
    return None
