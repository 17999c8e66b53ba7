"""Blob leases: how a push tells gc "I am about to reference this blob".

The protocol (the reasoning is in ``registry/store/gc.py``):

- a push takes a lease on a digest, in its own committed transaction, *before* it
  looks for or renames the final blob, and releases all its leases in the
  transaction that records the version;
- gc reads referenced ∪ leased digests in *one* statement (one snapshot) inside a
  write transaction that lease inserts cannot enter, and deletes blob files before
  that transaction ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, delete, func, select, union
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from registry.store.catalog.engine import write_session
from registry.store.catalog.history import utcnow
from registry.store.catalog.tables import BlobLeaseRow, VersionFileRow

# A push that has not finished after this long is taken as dead; gc ignores its leases.
LEASE_EXPIRY = timedelta(hours=24)


def take_lease(engine: Engine, lease: str, sha256: str, *, now: datetime | None = None) -> None:
    take_leases(engine, lease, [sha256], now=now)


def take_leases(
    engine: Engine, lease: str, digests: Iterable[str], *, now: datetime | None = None
) -> None:
    """Lease several digests in one committed transaction (one fsync, not one each)."""
    created = now or utcnow()
    with write_session(engine) as session:
        for sha256 in digests:
            session.add(BlobLeaseRow(lease=lease, sha256=sha256, created_at=created))


def release_leases(session: Session, lease: str) -> None:
    session.execute(delete(BlobLeaseRow).where(col(BlobLeaseRow.lease) == lease))


def release(engine: Engine, lease: str) -> None:
    with write_session(engine) as session:
        release_leases(session, lease)


def exclude_lease_writers(session: Session) -> None:
    """Make the current write transaction exclude lease inserts until it ends.

    SQLite: the transaction began with BEGIN IMMEDIATE, which already holds the one
    write lock. PostgreSQL: EXCLUSIVE mode conflicts with the ROW EXCLUSIVE lock every
    INSERT/DELETE takes, while plain reads go on.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("LOCK TABLE blob_leases IN EXCLUSIVE MODE")


def hold_off_gc(session: Session) -> None:
    """Keep gc out until the current write transaction ends, so that blobs stored inside
    it and referenced by its rows need no lease: gc's transaction cannot overlap it.

    SQLite: BEGIN IMMEDIATE already holds the one write lock gc also needs. PostgreSQL:
    ROW EXCLUSIVE on blob_leases conflicts with the EXCLUSIVE lock gc takes first
    (``exclude_lease_writers``), so gc waits for this commit or this waits for gc's.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql("LOCK TABLE blob_leases IN ROW EXCLUSIVE MODE")


def protected_digests(session: Session, cutoff: datetime) -> set[str]:
    """Digests a version references or a live lease holds, read in one statement.

    One statement means one snapshot: with two queries, a version committed between
    them (dropping its lease, adding its references) would be seen by neither.
    """
    referenced: Select[Any] = select(col(VersionFileRow.sha256).label("sha256"))
    leased: Select[Any] = select(col(BlobLeaseRow.sha256).label("sha256")).where(
        col(BlobLeaseRow.created_at) > cutoff
    )
    both = union(referenced, leased).subquery()
    return {row[0] for row in session.execute(select(both.c.sha256))}


def live_lease_count(session: Session, cutoff: datetime) -> int:
    return int(
        session.execute(
            select(func.count())
            .select_from(BlobLeaseRow)
            .where(col(BlobLeaseRow.created_at) > cutoff)
        ).scalar_one()
    )


def drop_expired(session: Session, cutoff: datetime) -> int:
    result = session.execute(delete(BlobLeaseRow).where(col(BlobLeaseRow.created_at) <= cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
