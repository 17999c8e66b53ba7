"""Choosing the version a ``NAME``, ``NAME@VERSION`` or ``NAME<specifier>`` means,
reading as few rows as possible.

``refs.select_version`` keeps the rules (pip's: yanked versions only when pinned
exactly, pre-releases only when nothing else matches or the specifier names one).
This module only feeds it: rows come from the (name, version_key) index highest
first, within the specifier's key range, a page at a time. The highest matching
*final* release within the rows read so far is the answer for the whole name,
because every unread row sorts lower; when only a pre-release (or nothing) has
matched, more rows are read. Errors are computed over every version of the name,
so their wording does not depend on paging.
"""

from __future__ import annotations

from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version
from sqlmodel import Session, col, select

from registry.errors import NotFoundError
from registry.store.catalog.tables import AdapterVersionRow
from registry.store.catalog.version_order import specifier_range, version_key
from registry.store.refs import Candidate, Ref, select_version

FIRST_PAGE = 32


def _candidates(rows: list[Any]) -> list[Candidate]:
    return [Candidate(version, status == "yanked") for version, status in rows]


def _everything(session: Session, name: str) -> list[Candidate]:
    rows = session.exec(
        select(AdapterVersionRow.version, AdapterVersionRow.status).where(
            AdapterVersionRow.name == name
        )
    ).all()
    return _candidates(list(rows))


def choose(session: Session, ref: Ref) -> Candidate:
    """The candidate ``ref`` (of kind latest, version or specifier) resolves to."""
    v = AdapterVersionRow
    if ref.kind == "version":
        found = session.exec(
            select(v.version, v.status).where(
                v.name == ref.name, col(v.version_key) == version_key(ref.value)
            )
        ).first()
        if found is not None:
            return Candidate(found[0], found[1] == "yanked")
        return select_version(ref, _everything(session, ref.name))  # raises the right error

    query = select(v.version, v.status).where(v.name == ref.name)
    if ref.kind == "specifier":
        low, high = specifier_range(SpecifierSet(ref.value))
        if low is not None:
            query = query.where(col(v.version_key) >= low)
        if high is not None:
            query = query.where(col(v.version_key) < high)
    query = query.order_by(col(v.version_key).desc())
    rows: list[Any] = []
    page = FIRST_PAGE
    while True:
        batch = list(session.exec(query.offset(len(rows)).limit(page)).all())
        rows.extend(batch)
        exhausted = len(batch) < page
        try:
            chosen = select_version(ref, _candidates(rows))
        except NotFoundError:
            chosen = None
        if chosen is not None and (exhausted or not Version(chosen.version).is_prerelease):
            return chosen
        if exhausted:
            return select_version(ref, _everything(session, ref.name))  # raises the right error
        page *= 4
