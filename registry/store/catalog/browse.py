"""Paged queries for browsing the catalog (the server's web pages): a page of versions
with free-text search inside a namespace, with its total; a page of audit events.

Each is one indexed statement for the ids (plus one COUNT), so a page of a huge
catalog reads a page of rows; the versions themselves are then loaded by id in one
batch (``Catalog.get_many``). A namespace is a half-open range on ``name`` (``ns/`` up to
``ns0``, '0' following '/'), which the name index serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Row, func, or_, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from registry.store.catalog.catalog import ListFilter
from registry.store.catalog.listing import byte_order, filter_clauses
from registry.store.catalog.tables import AdapterVersionRow, AuditEventRow, TagRow

MAX_PAGE = 500


@dataclass(frozen=True)
class BrowsePage:
    """The ids of one page of versions, in name then version order, and how many match."""

    ids: tuple[int, ...]
    total: int


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def namespace_clause(column: Any, namespace: str | None, dialect: str) -> list[ColumnElement[bool]]:
    """Names under ``namespace/`` (none: every name), compared by code point on every
    backend (a locale collation may order '/' and '0' otherwise)."""
    if namespace is None:
        return []
    column = byte_order(column, dialect)
    return [column >= namespace + "/", column < namespace + "0"]


def search_clause(text: str) -> ColumnElement[bool]:
    """Name, description, or a tag's key or value holding ``text`` (case-insensitive)."""
    v = AdapterVersionRow
    pattern = _like(text.lower())
    tagged = select(col(TagRow.version_id)).where(
        or_(
            func.lower(col(TagRow.key)).like(pattern, escape="\\"),
            func.lower(col(TagRow.value)).like(pattern, escape="\\"),
        )
    )
    return or_(
        col(v.name).like(pattern, escape="\\"),
        func.lower(col(v.description)).like(pattern, escape="\\"),
        col(v.id).in_(tagged),
    )


def browse_versions(
    engine: Engine,
    flt: ListFilter,
    *,
    search: str | None = None,
    namespace: str | None = None,
    offset: int = 0,
    size: int = 50,
) -> BrowsePage:
    """One page of the versions that match ``flt`` (its sort and limit aside), ``search``
    and ``namespace``, ordered by name (code points) then PEP 440 version."""
    v = AdapterVersionRow
    size = max(1, min(size, MAX_PAGE))
    dialect = engine.dialect.name
    clauses = filter_clauses(flt) + namespace_clause(col(v.name), namespace, dialect)
    if search:
        clauses.append(search_clause(search))
    with engine.connect() as connection:
        keys = (byte_order(col(v.name), dialect), col(v.version_key), col(v.id))
        query = select(col(v.id)).where(*clauses).order_by(*keys).offset(max(0, offset)).limit(size)
        ids = tuple(int(i) for i in connection.execute(query).scalars().all() if i is not None)
        if offset == 0 and len(ids) < size:
            total = len(ids)
        else:
            count = select(func.count()).select_from(v).where(*clauses)
            total = int(connection.execute(count).scalar_one())
    return BrowsePage(ids, total)


def audit_page(
    engine: Engine,
    *,
    namespace: str | None = None,
    name: str | None = None,
    actions: Sequence[str] = (),
    actor: str | None = None,
    before: int | None = None,
    size: int = 100,
) -> list[Row[Any]]:
    """Up to ``size`` events, newest first, older than event id ``before``. With a
    namespace only events on names inside it (registry-wide events name nothing there).
    Rows of ``audit_events`` (``details`` is JSON text)."""
    e = AuditEventRow
    clauses: list[Any] = namespace_clause(col(e.name), namespace, engine.dialect.name)
    if name is not None:
        clauses.append(col(e.name) == name)
    if actions:
        clauses.append(col(e.action).in_(list(actions)))
    if actor is not None:
        clauses.append(col(e.actor) == actor)
    if before is not None:
        clauses.append(col(e.id) < before)
    query = select(e).where(*clauses).order_by(col(e.id).desc()).limit(max(1, min(size, MAX_PAGE)))
    with engine.connect() as connection:
        return list(connection.execute(query).all())
