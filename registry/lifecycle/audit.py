"""The audit log: every change, who made it and when, oldest first."""

from __future__ import annotations

import json
from collections.abc import Sequence

from registry.errors import ArgumentError
from registry.lifecycle import transactions as q
from registry.lifecycle.results import AuditEvent, LogPage
from registry.lifecycle.selection import as_ref
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.tables import AuditEventRow
from registry.store.refs import Ref


def audit_log(
    catalog: Catalog,
    ref: str | Ref | None = None,
    *,
    actions: Sequence[str] = (),
    actor: str | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events oldest first. ``ref`` as a bare name selects the name's events; any other
    reference selects one version's (an exact version works after it was removed)."""
    if limit is not None and limit < 1:
        raise ArgumentError(f"--limit must be at least 1, not {limit}")
    name, version = _selection(catalog, ref)
    rows = q.events(
        catalog.engine, name=name, version=version, actions=actions, actor=actor, limit=limit
    )
    return [_event(r) for r in rows]


def audit_page(
    catalog: Catalog,
    ref: str | Ref | None = None,
    *,
    actions: Sequence[str] = (),
    actor: str | None = None,
    namespace: str | None = None,
    before: int | None = None,
    size: int = 100,
) -> LogPage:
    """One page of the log, newest first: at most ``size`` events older than the event
    id ``before`` (the last of the previous page), of names under ``namespace/`` if given."""
    if size < 1:
        raise ArgumentError(f"a page holds at least 1 event, not {size}")
    name, version = _selection(catalog, ref)
    rows = q.events_before(
        catalog.engine, name=name, version=version, actions=actions, actor=actor,
        namespace=namespace, before=before, size=size + 1,
    )  # fmt: skip
    return LogPage(tuple(_event(r) for r in rows[:size]), more=len(rows) > size)


def _selection(catalog: Catalog, ref: str | Ref | None) -> tuple[str | None, str | None]:
    name = version = None
    if ref is not None:
        parsed = as_ref(ref)
        name = parsed.name
        if parsed.kind == "version":
            version = parsed.value
        elif parsed.kind != "latest":
            version = catalog.resolve(parsed).version
    return name, version


def _event(r: AuditEventRow) -> AuditEvent:
    return AuditEvent(
        id=r.id or 0,
        at=r.at,
        actor=r.actor,
        action=r.action,
        name=r.name,
        version=r.version,
        details=json.loads(r.details),
    )
