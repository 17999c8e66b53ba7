"""Catalog transactions of the lifecycle: evals, alias moves, status, removal, the log.

Each function is one transaction; the change and its audit event commit together.
Rows are locked in one order (version row, then alias row) so that concurrent
writers on PostgreSQL queue instead of deadlocking; SQLite writers are serialised
by ``BEGIN IMMEDIATE`` anyway.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlmodel import Session, col, select

from registry.check import Check
from registry.errors import ConflictError, NotFoundError
from registry.store.catalog.engine import read_session, write_session
from registry.store.catalog.history import add_event, aliases_of, drop_alias, move_alias, utcnow
from registry.store.catalog.tables import (
    AdapterVersionRow,
    AliasHistoryRow,
    AliasRow,
    AuditEventRow,
    EvalRow,
    LineageEdgeRow,
    TagRow,
    TrainingDataRow,
    VersionFileRow,
)
from registry.store.results import EvalScore
from registry.store.scores import NewScore

_ALIAS_RETRIES = 10


def _lock_version(session: Session, version_id: int, *, exclusive: bool) -> AdapterVersionRow:
    row = session.exec(
        select(AdapterVersionRow)
        .where(AdapterVersionRow.id == version_id)
        .with_for_update(read=not exclusive)
    ).first()
    if row is None:
        raise NotFoundError("the version was removed meanwhile")
    return row


def _evals_of(session: Session, version_id: int) -> list[EvalScore]:
    return [
        EvalScore(e.metric, e.value, e.dataset, e.split, e.notes, e.recorded_at, e.actor)
        for e in session.exec(
            select(EvalRow).where(EvalRow.version_id == version_id).order_by(col(EvalRow.id))
        )
    ]


# -- evals ---------------------------------------------------------------------------


def append_evals(
    engine: Engine, version_id: int, scores: Sequence[NewScore], actor: str
) -> list[EvalScore]:
    now = utcnow()
    with write_session(engine) as session:
        row = _lock_version(session, version_id, exclusive=False)
        for s in scores:
            session.add(
                EvalRow(
                    version_id=version_id,
                    metric=s.metric,
                    value=s.value,
                    dataset=s.dataset,
                    split=s.split,
                    notes=s.notes,
                    recorded_at=now,
                    actor=actor,
                )
            )
        first = scores[0]
        add_event(
            session,
            actor,
            "eval",
            row.name,
            row.version,
            {
                "scores": {s.metric: s.value for s in scores},
                "dataset": first.dataset,
                "split": first.split,
                "notes": first.notes,
            },
        )
    return [EvalScore(s.metric, s.value, s.dataset, s.split, s.notes, now, actor) for s in scores]


# -- aliases -------------------------------------------------------------------------

Gate = Callable[[Sequence[EvalScore], str | None], tuple[Check, ...]]


@dataclass(frozen=True)
class AliasOutcome:
    name: str
    version: str
    digest: str
    previous: str | None
    changed: bool
    checks: tuple[Check, ...]


def set_alias(
    engine: Engine, version_id: int, alias: str, actor: str, note: str, gate: Gate
) -> AliasOutcome:
    """Move ``alias`` to the version once ``gate`` passes, both in one transaction.

    The gate sees the evals as of the move: on SQLite no eval can be added while the
    write lock is held, so what was checked is what was promoted.
    """
    for _attempt in range(_ALIAS_RETRIES):
        try:
            with write_session(engine) as session:
                row = _lock_version(session, version_id, exclusive=False)
                if row.status == "yanked":
                    raise ConflictError(
                        f"{row.name}@{row.version} is yanked ({row.status_reason}); "
                        "unyank it before pointing an alias at it"
                    )
                checks = gate(_evals_of(session, version_id), row.base_fingerprint)
                move = move_alias(session, row, alias, actor, note=note)
                if move.changed:
                    add_event(
                        session,
                        actor,
                        "alias",
                        row.name,
                        row.version,
                        {
                            "alias": alias,
                            "previous": move.previous,
                            "digest": row.digest,
                            "note": note,
                            "gates": [c.name for c in checks],
                        },
                    )
                return AliasOutcome(
                    row.name, row.version, row.digest, move.previous, move.changed, checks
                )
        except SqlIntegrityError:
            # Another writer created the same alias first; retry as a move.
            continue
    raise ConflictError(f"could not move alias {alias!r}: too many concurrent writers")


def remove_alias(engine: Engine, name: str, alias: str, actor: str, note: str) -> str:
    with write_session(engine) as session:
        previous = drop_alias(session, name, alias, actor, note=note)
        if previous is None:
            exists = session.exec(
                select(AdapterVersionRow.id).where(AdapterVersionRow.name == name).limit(1)
            ).first()
            if exists is None:
                raise NotFoundError(f"no adapter named {name!r}")
            raise NotFoundError(f"{name} has no alias {alias!r}")
        add_event(session, actor, "alias-rm", name, previous, {"alias": alias, "note": note})
        return previous


def alias_history(engine: Engine, name: str, alias: str | None) -> list[AliasHistoryRow]:
    query = select(AliasHistoryRow).where(AliasHistoryRow.name == name)
    if alias is not None:
        query = query.where(AliasHistoryRow.alias == alias)
    with read_session(engine) as session:
        return list(session.exec(query.order_by(col(AliasHistoryRow.id))))


def name_exists(engine: Engine, name: str) -> bool:
    with read_session(engine) as session:
        found = session.exec(
            select(AdapterVersionRow.id).where(AdapterVersionRow.name == name).limit(1)
        ).first()
        return found is not None


def current_aliases(engine: Engine, name: str) -> list[tuple[str, str]]:
    """(alias, version) pairs of a name."""
    with read_session(engine) as session:
        rows = session.exec(
            select(AliasRow.alias, AdapterVersionRow.version)
            .join(AdapterVersionRow, col(AdapterVersionRow.id) == col(AliasRow.version_id))
            .where(AliasRow.name == name)
            .order_by(col(AliasRow.alias))
        )
        return [(a, v) for a, v in rows]


# -- status --------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusOutcome:
    previous_status: str
    previous_reason: str | None
    aliases: tuple[str, ...]


def set_status(
    engine: Engine, version_id: int, status: str, reason: str | None, actor: str
) -> StatusOutcome:
    with write_session(engine) as session:
        row = _lock_version(session, version_id, exclusive=True)
        aliases = tuple(aliases_of(session, version_id))
        before = StatusOutcome(row.status, row.status_reason, aliases)
        if (row.status, row.status_reason) == (status, reason):
            return before  # nothing changes, so nothing is recorded
        row.status = status
        row.status_reason = reason
        session.add(row)
        add_event(
            session,
            actor,
            "yank" if status == "yanked" else "unyank",
            row.name,
            row.version,
            {
                "digest": row.digest,
                "reason": reason,
                "previous_status": before.previous_status,
                "previous_reason": before.previous_reason,
            },
        )
        return before


# -- removal -------------------------------------------------------------------------


def delete_version(
    engine: Engine, version_id: int, *, force: bool, reason: str, actor: str
) -> tuple[tuple[str, ...], int]:
    """Delete a version and its annotations; return (aliases removed, bytes now unreferenced).

    Refused while an alias points at the version, unless ``force`` (then the aliases
    go too, each recorded in the alias history).
    """
    with write_session(engine) as session:
        row = _lock_version(session, version_id, exclusive=True)
        aliases = aliases_of(session, version_id)
        if aliases and not force:
            shown = ", ".join(f"{row.name}@{a}" for a in aliases)
            raise ConflictError(
                f"{row.name}@{row.version} is what {shown} "
                f"{'points' if len(aliases) == 1 else 'point'} at; move or remove the "
                f"alias first (adapters alias --rm {row.name} {aliases[0]}) or pass --force"
            )
        for alias in aliases:
            drop_alias(session, row.name, alias, actor, action="rm-version", note=reason)
        files = list(
            session.exec(select(VersionFileRow).where(VersionFileRow.version_id == version_id))
        )
        for table in (VersionFileRow, TrainingDataRow, EvalRow, TagRow):
            session.execute(delete(table).where(col(table.version_id) == version_id))
        session.execute(delete(LineageEdgeRow).where(col(LineageEdgeRow.child_id) == version_id))
        session.delete(row)
        session.flush()
        sizes = {f.sha256: f.size for f in files}
        still_used = set(
            session.exec(
                select(VersionFileRow.sha256).where(col(VersionFileRow.sha256).in_(list(sizes)))
            )
        )
        freed = sum(size for sha, size in sizes.items() if sha not in still_used)
        add_event(
            session,
            actor,
            "rm",
            row.name,
            row.version,
            {
                "digest": row.digest,
                "reason": reason,
                "forced": force,
                "aliases_removed": aliases,
                "files": {f.path: f.sha256 for f in files},
                "manifest": json.loads(row.manifest),
            },
        )
        return tuple(aliases), freed


# -- the audit log -------------------------------------------------------------------


def record_event(
    engine: Engine,
    actor: str,
    action: str,
    name: str | None,
    version: str | None,
    details: dict[str, Any],
) -> None:
    """Append an event on its own (for changes made outside the catalog, e.g. hub sync)."""
    with write_session(engine) as session:
        add_event(session, actor, action, name, version, details)


def events(
    engine: Engine,
    *,
    name: str | None = None,
    version: str | None = None,
    actions: Sequence[str] = (),
    actor: str | None = None,
    limit: int | None = None,
) -> list[AuditEventRow]:
    """Matching events, oldest first; with ``limit``, the newest ``limit`` of them."""
    query = _event_filter(select(AuditEventRow), name, version, actions, actor)
    query = query.order_by(col(AuditEventRow.id).desc())
    if limit is not None:
        query = query.limit(limit)
    with read_session(engine) as session:
        return list(reversed(session.exec(query).all()))


def events_before(
    engine: Engine,
    *,
    name: str | None = None,
    version: str | None = None,
    actions: Sequence[str] = (),
    actor: str | None = None,
    namespace: str | None = None,
    before: int | None = None,
    size: int,
) -> list[AuditEventRow]:
    """At most ``size`` matching events older than the event ``before``, newest first:
    keyset pages on the event id, which only grows. ``namespace`` keeps the events of
    names under ``NS/`` (in the query, so that a page is never short for it)."""
    query = _event_filter(select(AuditEventRow), name, version, actions, actor)
    if namespace is not None:
        query = query.where(col(AuditEventRow.name).startswith(namespace + "/", autoescape=True))
    if before is not None:
        query = query.where(col(AuditEventRow.id) < before)
    query = query.order_by(col(AuditEventRow.id).desc()).limit(size)
    with read_session(engine) as session:
        return list(session.exec(query).all())


def _event_filter(
    query: Any, name: str | None, version: str | None, actions: Sequence[str], actor: str | None
) -> Any:
    if name is not None:
        query = query.where(AuditEventRow.name == name)
    if version is not None:
        query = query.where(AuditEventRow.version == version)
    if actions:
        query = query.where(col(AuditEventRow.action).in_(list(actions)))
    if actor is not None:
        query = query.where(AuditEventRow.actor == actor)
    return query


def event_count(engine: Engine) -> int:
    with read_session(engine) as session:
        return int(session.exec(select(func.count()).select_from(AuditEventRow)).one())


# -- tags and description --------------------------------------------------------------


def change_tags(
    engine: Engine,
    version_id: int,
    tags: dict[str, str],
    remove: Sequence[str],
    actor: str,
) -> tuple[dict[str, str], dict[str, str]]:
    """Set ``tags`` and drop the keys in ``remove``; return (before, after). A key to
    remove that the version lacks is a ``NotFoundError`` and nothing changes."""
    with write_session(engine) as session:
        row = _lock_version(session, version_id, exclusive=True)
        current = {
            t.key: t.value
            for t in session.exec(select(TagRow).where(TagRow.version_id == version_id))
        }
        absent = sorted(set(remove) - set(current))
        if absent:
            keys = ", ".join(sorted(current)) or "none"
            raise NotFoundError(
                f"{row.name}@{row.version} has no tag {', '.join(absent)}; its tags: {keys}"
            )
        after = {k: v for k, v in current.items() if k not in remove} | tags
        if after == current:
            return current, after  # nothing changes, so nothing is recorded
        for key in remove:
            session.exec(
                delete(TagRow).where(col(TagRow.version_id) == version_id, col(TagRow.key) == key)
            )
        for key, value in tags.items():
            existing = session.get(TagRow, (version_id, key))
            if existing is None:
                session.add(TagRow(version_id=version_id, key=key, value=value))
            else:
                existing.value = value
                session.add(existing)
        changed = {k: v for k, v in tags.items() if current.get(k) != v}
        add_event(
            session,
            actor,
            "tag",
            row.name,
            row.version,
            {"digest": row.digest, "set": changed, "removed": sorted(remove), "previous": current},
        )
        return current, after


def set_description(
    engine: Engine, version_id: int, description: str | None, actor: str
) -> str | None:
    """Set (None: clear) the description; return the previous one."""
    with write_session(engine) as session:
        row = _lock_version(session, version_id, exclusive=True)
        previous = row.description
        if previous == description:
            return previous
        row.description = description
        session.add(row)
        add_event(
            session,
            actor,
            "describe",
            row.name,
            row.version,
            {"digest": row.digest, "description": description, "previous": previous},
        )
        return previous
