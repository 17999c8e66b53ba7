"""Garbage collection of blobs, and the leases that keep it from racing pushes.

A push writes blobs first and records the version last, so for a while a blob
exists that no version references. Without care, gc could delete it in that
window: the push that just wrote it, or one that found it already stored and
deduplicated against it, would then record a version pointing at nothing.

The protocol:

1. For each file, a push hashes it into a temp file, then **takes a lease** on the
   digest in a committed transaction, and only then looks for the final blob
   (keeping it if present) or renames its temp file into place.
2. The transaction that records the version also **releases** the push's leases.
   Until then the lease protects the blob; from then on the version does.
3. gc lists the store, then opens a write transaction that lease inserts cannot
   enter (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: ``LOCK TABLE blob_leases IN
   EXCLUSIVE MODE``), reads referenced ∪ leased digests in one statement, and
   deletes the other blobs before that transaction ends.

A push whose every file was hashed as it arrived (the server's staged uploads,
``verified_files``) skips the leases: it links its blobs into place inside the very
transaction that records the version, after ``hold_off_gc``, so gc's transaction runs
wholly before it (and a blob it deleted is linked again) or wholly after (and sees the
references).

Why nothing is lost: a lease committed before gc's transaction is seen by it; a
lease taken after it can only be committed once gc is done deleting, so the push's
look for the final blob happens after the deletion and rewrites what is missing.
A push that died keeps its leases until ``LEASE_EXPIRY``; gc ignores older leases
and drops them, and removes temp files untouched for as long.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import Session

from registry.errors import CatalogMismatchError, RegistryError
from registry.faults import fault_point
from registry.store import catalog_match
from registry.store.actor import current_actor
from registry.store.blob_store import BlobBackend
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.engine import read_session, write_session
from registry.store.catalog.history import add_event, utcnow
from registry.store.leases import (
    LEASE_EXPIRY,
    drop_expired,
    exclude_lease_writers,
    live_lease_count,
    protected_digests,
    release,
    take_lease,
    take_leases,
)
from registry.store.results import GcBlob, GcFile, GcResult
from registry.store.verified_files import STAGED_UPLOADS

if TYPE_CHECKING:
    from registry.store.store import Store


class PushLeases:
    """The leases of one push: taken per blob, released when the version is recorded."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.lease = uuid.uuid4().hex
        self.digests: list[str] = []
        self.settled = False  # released by the transaction that recorded the version

    def take(self, sha256: str) -> None:
        if sha256 not in self.digests:
            take_lease(self.catalog.engine, self.lease, sha256)
            self.digests.append(sha256)
            fault_point("push.leased")

    def take_all(self, digests: Iterable[str]) -> None:
        """Lease digests known before any blob is written, in one transaction."""
        new = [sha256 for sha256 in dict.fromkeys(digests) if sha256 not in self.digests]
        if new:
            take_leases(self.catalog.engine, self.lease, new)
            self.digests.extend(new)
            fault_point("push.leased")

    def release(self) -> None:
        """Drop the leases of a push that did not record a version (best effort:
        leases that cannot be dropped now expire)."""
        if self.digests and not self.settled:
            with contextlib.suppress(RegistryError):
                release(self.catalog.engine, self.lease)
        self.settled = True


def collect(store: Store, *, dry_run: bool = False, trust_catalog: bool = False) -> GcResult:
    """Delete blobs no version references and no live push holds (``dry_run``: list them).

    Refused when the catalog does not look like this blob store's (``catalog_match``)
    unless ``trust_catalog``.
    """
    catalog, blobs, tmp_dir = store.catalog, store.blobs, store.tmp_dir
    now = utcnow()
    cutoff = now - LEASE_EXPIRY
    stored = dict(blobs.iter_sizes())
    stale = _stale_temp_files(blobs, tmp_dir)
    uploads = _stale_uploads(blobs, dry_run=dry_run)
    if dry_run:
        with read_session(catalog.engine) as session:
            _refuse_mismatch(session, blobs, stored, trust_catalog)
            keep = protected_digests(session, cutoff)
            leased = live_lease_count(session, cutoff)
        doomed = sorted(set(stored) - keep)
        return _result(doomed, stored, stale, leased, uploads, dry_run=True)

    with write_session(catalog.engine) as session:
        exclude_lease_writers(session)
        _refuse_mismatch(session, blobs, stored, trust_catalog)
        keep = protected_digests(session, cutoff)
        leased = live_lease_count(session, cutoff)
        doomed = sorted(set(stored) - keep)
        for sha256 in doomed:
            blobs.delete(sha256)
            fault_point("gc.deleted")
        expired = drop_expired(session, cutoff)
        add_event(
            session,
            current_actor(),
            "gc",
            None,
            None,
            {
                "blobs": len(doomed),
                "bytes": sum(stored[d] for d in doomed),
                "digests": doomed,
                "temp_files": len(stale),
                "expired_leases": expired,
                "aborted_uploads": uploads,
            },
        )
        fault_point("gc.before-commit")
    for path, _size in stale:
        with contextlib.suppress(FileNotFoundError):
            _remove(path)
    return _result(doomed, stored, stale, leased, uploads, dry_run=False)


def _refuse_mismatch(
    session: Session, blobs: BlobBackend, stored: dict[str, int], trust_catalog: bool
) -> None:
    if trust_catalog:
        return
    problem = catalog_match.check(session, blobs, set(stored))
    if problem is not None:
        raise CatalogMismatchError(
            f"gc refused: {problem}; run `adapters doctor` and restore the catalog from a "
            f"backup, or pass {catalog_match.OVERRIDE_FLAG} to delete every blob it does "
            "not reference"
        )


def _result(
    doomed: list[str],
    stored: dict[str, int],
    stale: list[tuple[Path, int]],
    leased: int,
    uploads: int,
    *,
    dry_run: bool,
) -> GcResult:
    return GcResult(
        dry_run=dry_run,
        blobs=tuple(GcBlob(d, stored[d]) for d in doomed),
        temp_files=tuple(GcFile(str(p), size) for p, size in stale),
        kept=len(stored) - len(doomed),
        leased=leased,
        uploads=uploads,
    )


def _stale_uploads(blobs: BlobBackend, *, dry_run: bool) -> int:
    """Incomplete uploads older than a lease lives: multipart uploads of a push killed
    mid-upload, and direct uploads to the server's store that were never claimed."""
    from registry.store.direct_uploads import remove_stale
    from registry.store.object_blobs import ObjectBlobStore, abort_stale_uploads

    if not isinstance(blobs, ObjectBlobStore):
        return 0
    aborted = abort_stale_uploads(blobs, LEASE_EXPIRY, dry_run=dry_run)
    return aborted + remove_stale(blobs, LEASE_EXPIRY, dry_run=dry_run)


def _stale_temp_files(blobs: BlobBackend, tmp_dir: Path) -> list[tuple[Path, int]]:
    """Temp files and push staging directories untouched for longer than a lease lives.

    A write in progress keeps touching its temp file, so age since the last write
    tells a crashed push from a slow one.
    """
    limit = time.time() - LEASE_EXPIRY.total_seconds()
    found: list[tuple[Path, int]] = []
    candidates = list(blobs.staging_files())
    if tmp_dir.is_dir():
        for path in sorted(tmp_dir.iterdir()):
            if path.name == STAGED_UPLOADS and path.is_dir():
                # Each staged upload on its own: removing the folder as a whole would
                # take uploads that arrived after this listing with it.
                candidates += sorted(path.iterdir())
            else:
                candidates.append(path)
    for path in candidates:
        try:
            if _newest_mtime(path) < limit:
                found.append((path, _size(path)))
        except FileNotFoundError:
            continue
    return found


def _newest_mtime(path: Path) -> float:
    if not path.is_dir():
        return path.stat().st_mtime
    times = [path.stat().st_mtime]
    for root, dirs, files in os.walk(path):
        times.extend(Path(root, name).stat().st_mtime for name in dirs + files)
    return max(times)


def _size(path: Path) -> int:
    if not path.is_dir():
        return path.stat().st_size
    return sum(Path(r, f).stat().st_size for r, _d, files in os.walk(path) for f in files)


def _remove(path: Path) -> None:
    if path.is_dir():
        import shutil

        shutil.rmtree(path)
    else:
        path.unlink()
