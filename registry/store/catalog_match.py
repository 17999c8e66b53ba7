"""Does this catalog belong to this blob store? The evidence gc and doctor weigh.

gc deletes what the catalog does not reference, so a catalog that is not the blob
store's own (restored from the wrong backup, an empty one started in place of a lost
one, a database URL pointing elsewhere) would make it delete every blob. Two signs
count as such a mismatch, and stop gc unless told otherwise:

- the catalog has never recorded anything (no audit event: every push, rm and gc
  leaves one) and the store holds blobs older than the catalog (a new registry
  whose first push failed holds only newer ones; a catalog of unknown age with
  blobs counts too);
- the catalog references blobs and the store holds blobs, but not one of the
  referenced blobs is stored.
"""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import Session, col, select

from registry.store.blob_store import BlobBackend
from registry.store.blobs import BlobStore
from registry.store.catalog.schema import CREATED_KEY
from registry.store.catalog.tables import AuditEventRow, SchemaInfo, VersionFileRow
from registry.store.object_blobs import ObjectBlobStore

OVERRIDE_FLAG = "--trust-catalog"
_CLOCK_SLACK = 2.0  # seconds: file system timestamps against the database clock
_REMOTE_CLOCK_SLACK = 60.0  # an object store's server keeps its own time


def referenced_digests(session: Session) -> set[str]:
    return set(session.exec(select(VersionFileRow.sha256).distinct()))


def recorded_anything(session: Session) -> bool:
    return bool(session.exec(select(func.count(col(AuditEventRow.id)))).one())


def created_at(session: Session) -> float | None:
    value = session.exec(select(SchemaInfo.value).where(SchemaInfo.key == CREATED_KEY)).first()
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def mismatch(
    stored: set[str],
    referenced: set[str],
    recorded: bool,
    older_than_catalog: int,
) -> str | None:
    """A sentence saying why the catalog looks like another store's, or None.

    ``older_than_catalog``: how many stored blobs predate the catalog.
    """
    if not stored:
        return None
    if not recorded and older_than_catalog:
        return (
            f"the catalog has never recorded anything, yet the blob store holds "
            f"{older_than_catalog} blobs older than it (a lost catalog replaced by a new one?)"
        )
    if referenced and not referenced & stored:
        return (
            f"none of the {len(referenced)} blobs the catalog references is stored, and the "
            f"store holds {len(stored)} other blobs (a catalog of another registry?)"
        )
    return None


def check(session: Session, blobs: BlobBackend, stored: set[str]) -> str | None:
    """``mismatch`` with the evidence read from the catalog and the blob store."""
    recorded = recorded_anything(session)
    older = 0
    if stored and not recorded:
        created = created_at(session)
        older = len(stored) if created is None else _older_than(blobs, stored, created)
    return mismatch(stored, referenced_digests(session), recorded, older)


def _older_than(blobs: BlobBackend, stored: set[str], created: float) -> int:
    if isinstance(blobs, ObjectBlobStore):
        # The store's own clock stamps these: allow for it differing from the database's.
        limit = created - _REMOTE_CLOCK_SLACK
        return sum(
            1 for sha256, _size, modified in blobs.iter_listing()
            if sha256 in stored and modified < limit
        )  # fmt: skip
    if not isinstance(blobs, BlobStore):
        return len(stored)  # no times to go by: refuse rather than trust a fresh catalog
    count = 0
    for sha256 in stored:
        try:
            count += blobs.path(sha256).stat().st_mtime < created - _CLOCK_SLACK
        except FileNotFoundError:
            continue
    return count
