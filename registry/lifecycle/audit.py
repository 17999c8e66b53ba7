"""The audit log: every change, who made it and when, oldest first."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from registry.errors import ArgumentError
from registry.lifecycle import transactions as q
from registry.lifecycle.results import (
    AuditEvent,
)
from registry.store.catalog.catalog import Catalog
from registry.store.refs import Ref

if TYPE_CHECKING:
    pass
from registry.lifecycle.selection import as_ref


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
    name = version = None
    if ref is not None:
        parsed = as_ref(ref)
        name = parsed.name
        if parsed.kind == "version":
            version = parsed.value
        elif parsed.kind != "latest":
            version = catalog.resolve(parsed).version
    rows = q.events(
        catalog.engine, name=name, version=version, actions=actions, actor=actor, limit=limit
    )
    return [
        AuditEvent(
            id=r.id or 0,
            at=r.at,
            actor=r.actor,
            action=r.action,
            name=r.name,
            version=r.version,
            details=json.loads(r.details),
        )
        for r in rows
    ]
