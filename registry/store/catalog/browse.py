"""Paged queries for browsing the catalog (the server's web pages): a page of versions
with free-text search inside a namespace, with how many match (counted up to
``COUNT_CAP``); a page of audit events.

Each is one indexed statement for the ids, so a page of a huge catalog reads at most
``COUNT_CAP`` ids, never every match (an exact count of a search matching 100k versions
costs as much as the page again); the versions themselves are then loaded by id in one
batch (``Catalog.get_many``). A namespace is a half-open range on ``name`` (``ns/`` up to
``ns0``, '0' following '/'), which the name index serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    column,
    func,
    literal_column,
    or_,
    select,
    table,
    union,
)
from sqlalchemy import text as sql_text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import col

from registry.store.catalog import search_index
from registry.store.catalog.listing import ListFilter, SqlParams, filter_clauses
from registry.store.catalog.tables import AdapterVersionRow, AuditEventRow, TagRow

MAX_PAGE = 500
BROAD = 2000  # matches past which a search walks the listing order (see search_clause)
COUNT_CAP = 2000  # matches are counted up to this many; past it a page says "more than"


@dataclass(frozen=True)
class BrowsePage:
    """The ids of one page of versions, in name then version order, and how many match:
    ``total`` is exact unless ``capped`` (then more than ``COUNT_CAP`` match, and
    ``total`` is ``COUNT_CAP``). ``more``: a later page holds versions."""

    ids: tuple[int, ...]
    total: int
    capped: bool = False
    more: bool = False


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def code_point_order(column: Any, dialect: str) -> Any:
    """``column`` compared by code points, as Python compares ``str`` (the SQLAlchemy
    form of ``listing.byte_order``)."""
    return column.collate("C") if dialect == "postgresql" else column


def listing_filter(flt: ListFilter) -> list[ColumnElement[bool]]:
    """The list query's filters (``listing.filter_clauses``, SQL text) as one clause."""
    bind = SqlParams()
    clauses = filter_clauses(flt, bind)
    if not clauses:
        return []
    joined = sql_text("(" + " AND ".join(clauses) + ")").bindparams(**bind.values)
    return [cast("ColumnElement[bool]", joined)]


def namespace_clause(column: Any, namespace: str | None, dialect: str) -> list[ColumnElement[bool]]:
    """Names under ``namespace/`` (none: every name), compared by code point on every
    backend (a locale collation may order '/' and '0' otherwise)."""
    if namespace is None:
        return []
    column = code_point_order(column, dialect)
    return [column >= namespace + "/", column < namespace + "0"]


def _index_matches(text: str, index: str | None) -> Select[Any] | None:
    """The ids of versions holding ``text``, from the SQLite search index: an FTS5 phrase
    query, or for a text too short for a trigram a scan of the index's compact copy of
    the text; None where the index cannot answer exactly."""
    if index != "fts5-trigram":
        return None
    phrase = search_index.fts_phrase(text)
    if phrase is not None:
        fts = table(search_index.FTS_TABLE, column("rowid"))
        match = literal_column(search_index.FTS_TABLE).op("MATCH")(phrase)
        return select(fts.c.rowid).where(match)
    short = search_index.short_scan(text)
    if short is not None:
        copy = table(search_index.CONTENT_TABLE, column("id"), column("c0"), column("c1"),
                     column("c2"))  # fmt: skip
        found = or_(*(func.instr(c, short) > 0 for c in (copy.c.c0, copy.c.c1, copy.c.c2)))
        return select(copy.c.id).where(found)
    return None


def search_clause(
    text: str, index: str | None = None, *, broad: bool = False
) -> ColumnElement[bool]:
    """Name, description, or a tag's key or value holding ``text`` (case-insensitive).

    With the SQLite search index (``index`` "fts5-trigram") one query of the index; else
    one UNION of three narrow scans (names, descriptions, tags; on PostgreSQL each served
    by its ``pg_trgm`` index) rather than an OR across the whole row. ``broad``: the
    text matches many versions, so walk the listing order and test each id against the
    matches (``id + 0`` keeps SQLite from looking every match up and sorting them all).
    """
    v = AdapterVersionRow
    matching = _index_matches(text, index)
    if matching is not None:
        return (col(v.id) + 0 if broad else col(v.id)).in_(matching)
    pattern = _like(text)
    by_name = select(col(v.id)).where(col(v.name).ilike(pattern, escape="\\"))
    by_description = select(col(v.id)).where(col(v.description).ilike(pattern, escape="\\"))
    by_tag = select(col(TagRow.version_id)).where(
        or_(
            col(TagRow.key).ilike(pattern, escape="\\"),
            col(TagRow.value).ilike(pattern, escape="\\"),
        )
    )
    return col(v.id).in_(union(by_name, by_description, by_tag))


def _broad(connection: Connection, text: str, index: str | None) -> bool:
    """Whether more than ``BROAD`` versions hold ``text`` (the index counts that cheaply)."""
    matching = _index_matches(text, index)
    if matching is None:
        return False
    probe = select(func.count()).select_from(matching.limit(BROAD + 1).subquery())
    return int(connection.execute(probe).scalar_one()) > BROAD


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
    clauses = listing_filter(flt) + namespace_clause(col(v.name), namespace, dialect)
    with engine.connect() as connection:
        if search:
            index = search_index.kind(connection)
            clauses.append(search_clause(search, index, broad=_broad(connection, search, index)))
        keys = (code_point_order(col(v.name), dialect), col(v.version_key), col(v.id))
        ordered = select(col(v.id)).where(*clauses).order_by(*keys)
        offset, end = max(0, offset), max(0, offset) + size

        def run(query: Select[Any]) -> list[int]:
            return [int(i) for i in connection.execute(query).scalars().all() if i is not None]

        if end <= COUNT_CAP:
            # One statement gives the page and the count (up to the cap): a broad search
            # builds its set of matches once, not once more for a COUNT.
            found = run(ordered.limit(COUNT_CAP + 1))
            ids = found[offset:end]
            total, more = min(len(found), COUNT_CAP), len(found) > end
            return BrowsePage(tuple(ids), total, len(found) > COUNT_CAP, more)
        found = run(ordered.offset(offset).limit(size + 1))
        if found:  # past the cap, so more than COUNT_CAP match
            return BrowsePage(tuple(found[:size]), COUNT_CAP, True, len(found) > size)
        capped = select(func.count()).select_from(ordered.limit(COUNT_CAP + 1).subquery())
        count = int(connection.execute(capped).scalar_one())
    return BrowsePage((), min(count, COUNT_CAP), count > COUNT_CAP, False)


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
