"""Choosing the version a reference means (``NAME``, ``NAME@VERSION``, ``NAME@ALIAS``,
``NAME@sha256:PREFIX``, ``NAME<specifier>``), reading as few rows as possible.

``refs.select_version`` keeps the rules (pip's: yanked versions only when pinned
exactly, pre-releases only when nothing else matches or the specifier names one).
This module only feeds it: rows come from the (name, version_key) index highest
first, within the specifier's key range, a page at a time. The highest matching
*final* release within the rows read so far is the answer for the whole name,
because every unread row sorts lower; when only a pre-release (or nothing) has
matched, more rows are read. Errors are computed over every version of the name,
so their wording does not depend on paging.

Plain SQL over an ``Execute`` callable (as ``listing`` and ``version_rows``), so that
``Catalog`` (SQLAlchemy, every backend) and ``sqlite_reader`` (the standard library's
``sqlite3``, for ``adapters show``) resolve alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from registry.errors import NotFoundError
from registry.store.catalog.version_order import specifier_range, version_key
from registry.store.catalog.version_rows import VERSION_COLUMNS, Execute
from registry.store.refs import Candidate, Ref, select_version

FIRST_PAGE = 32
_ROW = f"SELECT {', '.join(VERSION_COLUMNS)} FROM adapter_versions"


def resolve_row(execute: Execute, ref: Ref) -> Sequence[Any]:
    """The ``VERSION_COLUMNS`` row ``ref`` resolves to; ``NotFoundError`` saying why not."""
    if ref.kind == "alias":
        found = _rows(
            execute,
            f"{_ROW} WHERE id = (SELECT version_id FROM aliases WHERE name = :n AND alias = :a)",
            {"n": ref.name, "a": ref.value},
        )
        if not found:
            _require_name(execute, ref.name)
            raise NotFoundError(f"{ref.name} has no alias {ref.value!r}")
        return found[0]
    if ref.kind == "digest":
        # A half-open range, not LIKE: an index search on every backend (prefixes are hex).
        matches = _rows(
            execute,
            f"{_ROW} WHERE name = :n AND digest >= :low AND digest < :high",
            {"n": ref.name, "low": f"sha256:{ref.value}", "high": f"sha256:{ref.value}g"},
        )
        if not matches:
            _require_name(execute, ref.name)
            raise NotFoundError(f"{ref.name} has no version with digest sha256:{ref.value}")
        if len(matches) > 1:
            raise NotFoundError(
                f"digest prefix sha256:{ref.value} is ambiguous for {ref.name}; give more digits"
            )
        return matches[0]
    chosen = choose(execute, ref)
    params = {"n": ref.name, "v": chosen.version}
    return _rows(execute, f"{_ROW} WHERE name = :n AND version = :v", params)[0]


def _rows(execute: Execute, sql: str, params: dict[str, Any]) -> list[Sequence[Any]]:
    return list(execute(sql, params))


def _require_name(execute: Execute, name: str) -> None:
    if not _rows(execute, "SELECT id FROM adapter_versions WHERE name = :n LIMIT 1", {"n": name}):
        raise NotFoundError(f"no adapter named {name!r}")


def _candidates(rows: Sequence[Sequence[Any]]) -> list[Candidate]:
    return [Candidate(version, status == "yanked") for version, status in rows]


def _everything(execute: Execute, name: str) -> list[Candidate]:
    sql = "SELECT version, status FROM adapter_versions WHERE name = :n"
    return _candidates(_rows(execute, sql, {"n": name}))


def choose(execute: Execute, ref: Ref) -> Candidate:
    """The candidate ``ref`` (of kind latest, version or specifier) resolves to."""
    if ref.kind == "version":
        found = _rows(
            execute,
            "SELECT version, status FROM adapter_versions WHERE name = :n AND version_key = :k",
            {"n": ref.name, "k": version_key(ref.value)},
        )
        if found:
            return Candidate(found[0][0], found[0][1] == "yanked")
        return select_version(ref, _everything(execute, ref.name))  # raises the right error

    where = ["name = :n"]
    params: dict[str, Any] = {"n": ref.name}
    if ref.kind == "specifier":
        low, high = specifier_range(SpecifierSet(ref.value))
        if low is not None:
            where.append("version_key >= :low")
            params["low"] = low
        if high is not None:
            where.append("version_key < :high")
            params["high"] = high
    sql = (
        f"SELECT version, status FROM adapter_versions WHERE {' AND '.join(where)} "
        "ORDER BY version_key DESC LIMIT :limit OFFSET :offset"
    )
    rows: list[Sequence[Any]] = []
    page = FIRST_PAGE
    while True:
        batch = _rows(execute, sql, {**params, "limit": page, "offset": len(rows)})
        rows.extend(batch)
        exhausted = len(batch) < page
        try:
            chosen = select_version(ref, _candidates(rows))
        except NotFoundError:
            chosen = None
        if chosen is not None and (exhausted or not Version(chosen.version).is_prerelease):
            return chosen
        if exhausted:
            return select_version(ref, _everything(execute, ref.name))  # raises the right error
        page *= 4
