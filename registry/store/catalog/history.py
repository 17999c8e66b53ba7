"""Writes that leave a trace: audit events and alias moves, always inside the caller's
transaction so the change and its record commit (or vanish) together."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, col, select

from registry.errors import ConflictError
from registry.store.catalog.tables import (
    AdapterVersionRow,
    AliasHistoryRow,
    AliasRow,
    AuditEventRow,
)

if TYPE_CHECKING:
    from registry.store.catalog.version_rows import Execute


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def add_event(
    session: Session,
    actor: str,
    action: str,
    name: str | None,
    version: str | None,
    details: dict[str, Any],
) -> None:
    session.add(
        AuditEventRow(
            at=utcnow(),
            actor=actor,
            action=action,
            name=name,
            version=version,
            details=json.dumps(details, sort_keys=True, default=str),
        )
    )


@dataclass(frozen=True)
class Move:
    previous: str | None  # the version the alias pointed at before, if any
    changed: bool


def lock_alias(session: Session, name: str, alias: str) -> AliasRow | None:
    # FOR UPDATE serialises two movers of one alias on PostgreSQL, so each reads the
    # previous target the other wrote; SQLite writers are serialised by BEGIN IMMEDIATE.
    return session.exec(
        select(AliasRow).where(AliasRow.name == name, AliasRow.alias == alias).with_for_update()
    ).first()


def _version_string(session: Session, version_id: int) -> str | None:
    return session.exec(
        select(AdapterVersionRow.version).where(AdapterVersionRow.id == version_id)
    ).first()


def move_alias(
    session: Session,
    target: AdapterVersionRow,
    alias: str,
    actor: str,
    *,
    action: str = "set",
    note: str = "",
) -> Move:
    """Point ``alias`` of the target's name at ``target``, recording the move.

    A concurrent first creation of the same alias fails on the primary key; the
    caller's transaction then rolls back and may be retried.
    """
    assert target.id is not None
    current = lock_alias(session, target.name, alias)
    now = utcnow()
    previous = None
    if current is not None:
        if current.version_id == target.id:
            return Move(previous=target.version, changed=False)
        previous = _version_string(session, current.version_id)
        current.version_id = target.id
        current.updated_at = now
        session.add(current)
    else:
        session.add(AliasRow(name=target.name, alias=alias, version_id=target.id, updated_at=now))
    session.add(
        AliasHistoryRow(
            name=target.name,
            alias=alias,
            action=action,
            version=target.version,
            digest=target.digest,
            previous=previous,
            at=now,
            actor=actor,
            note=note,
        )
    )
    session.flush()
    return Move(previous=previous, changed=True)


def drop_alias(
    session: Session, name: str, alias: str, actor: str, *, action: str = "rm", note: str = ""
) -> str | None:
    """Remove an alias; return the version it pointed at (None if there was no such alias)."""
    current = lock_alias(session, name, alias)
    if current is None:
        return None
    previous = _version_string(session, current.version_id)
    session.delete(current)
    session.add(
        AliasHistoryRow(
            name=name,
            alias=alias,
            action=action,
            version=None,
            digest=None,
            previous=previous,
            at=utcnow(),
            actor=actor,
            note=note,
        )
    )
    session.flush()
    return previous


def aliases_of(session: Session, version_id: int) -> list[str]:
    return list(
        session.exec(
            select(AliasRow.alias)
            .where(AliasRow.version_id == version_id)
            .order_by(col(AliasRow.alias))
        )
    )


def removed_versions(run: Execute, name: str) -> dict[str, str]:
    """Versions of ``name`` that were removed, with the digest each one had; ``run``
    executes plain SQL in the caller's transaction (every push reads this inside its
    write transaction)."""
    rows = run(_REMOVED, {"name": name})
    return {v: json.loads(d).get("digest", "") for v, d in rows if v is not None}


_REMOVED = "SELECT version, details FROM audit_events WHERE name = :name AND action = 'rm'"


def refuse_reuse(name: str, version: str, digest: str, removed: dict[str, str]) -> None:
    from packaging.version import Version

    wanted = Version(version)
    for old, old_digest in removed.items():
        if Version(old) == wanted and old_digest != digest:
            raise ConflictError(
                f"{name}@{old} was removed, and a version number is never reused for other "
                "content (whoever pinned it would silently get different weights); push "
                "under a new version, or omit --version to get the next one"
            )
