"""Version rows to typed results: ``adapter_versions`` rows with their annotations
(evals, aliases, tags, training data) read as plain rows, one query per table and
chunk, gathered per version into a hashable ``Record``, and built into ``AdapterVersion``.

Plain SQL over an ``Execute`` callable, so that SQLAlchemy (every backend, in
``Catalog``) and the standard library's ``sqlite3`` (``sqlite_reader``) run the same
statements and the same mapping.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from registry.store.catalog.manifest_cache import parsed_manifest
from registry.store.results import AdapterVersion, EvalScore, TrainingDataInfo

# Runs one statement (SQL text with :name parameters) and returns its rows as tuples.
Execute = Callable[[str, Mapping[str, Any]], Iterable[Sequence[Any]]]

# The columns of adapter_versions a typed result is made of, in the order rows are read
# (id, name, version first), and version_key, which pages of a listing start after.
# Not the others (method, source format and base are the manifest's, repeated to be
# indexed): a listing reads every value of every row it returns, and each costs.
VERSION_COLUMNS = (
    "id",
    "name",
    "version",
    "version_key",
    "digest",
    "manifest",
    "size_bytes",
    "status",
    "status_reason",
    "created_at",
    "created_by",
    "description",
)
_COLUMN = {name: index for index, name in enumerate(VERSION_COLUMNS)}

# Bound parameters per IN list: SQLite before 3.32 allowed 999 per statement.
CHUNK = 5000 if sqlite3.sqlite_version_info >= (3, 32) else 900


def _in_list(ids: Sequence[int]) -> tuple[str, dict[str, Any]]:
    # Row ids written as integer literals (int() refuses anything else), not bound
    # parameters: SQLAlchemy's text() parses every ":name" of a statement with a regex,
    # ~15 us each, which was a third of reading 1,000 versions.
    return "(" + ", ".join(str(int(value)) for value in ids) + ")", {}


def chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


def load_ids(execute: Execute, ids: Sequence[int]) -> list[AdapterVersion]:
    """The versions with these ids, in this order (unknown ids are skipped)."""
    return load_rows(execute, rows_of_ids(execute, ids))


def rows_of_ids(execute: Execute, ids: Sequence[int]) -> list[Sequence[Any]]:
    """The rows of ``VERSION_COLUMNS`` with these ids, in this order (unknown ids skipped)."""
    by_id: dict[int, Sequence[Any]] = {}
    columns = ", ".join(VERSION_COLUMNS)
    for chunk in chunks(ids):
        members, params = _in_list(chunk)
        for row in execute(f"SELECT {columns} FROM adapter_versions WHERE id IN {members}", params):
            by_id[row[0]] = row
    return [by_id[i] for i in ids if i in by_id]


def load_rows(execute: Execute, rows: Sequence[Sequence[Any]]) -> list[AdapterVersion]:
    """Rows of ``VERSION_COLUMNS`` to typed results, with their annotations."""
    return [build(record) for record in read_records(execute, rows)]


# A version as read: its row of VERSION_COLUMNS and its annotation rows (evals, aliases,
# tags, training data, each without the version id), all hashable. Everything the
# version's typed result is made of, so a result derived from a record (the server's
# encoded list entries) may be kept under the record itself.
Record = tuple[Sequence[Any], tuple[Any, ...], tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]]


def read_records(execute: Execute, rows: Sequence[Sequence[Any]]) -> list[Record]:
    """Rows of ``VERSION_COLUMNS`` with their annotation rows, one query per table and chunk."""
    ids = [row[0] for row in rows]
    if not ids:
        return []
    evals: dict[int, list[Sequence[Any]]] = {}
    aliases: dict[int, list[Sequence[Any]]] = {}
    tags: dict[int, list[Sequence[Any]]] = {}
    data: dict[int, list[Sequence[Any]]] = {}
    # In chunks: backends cap the number of bound parameters in one statement.
    for chunk in chunks(ids):
        members, params = _in_list(chunk)
        for table, sql in (
            (evals, "SELECT version_id, metric, value, dataset, split, notes, recorded_at, actor "
                    f"FROM evals WHERE version_id IN {members} ORDER BY id"),
            (aliases, f"SELECT version_id, alias FROM aliases WHERE version_id IN {members} "
                      "ORDER BY alias"),
            (tags, f"SELECT version_id, key, value FROM tags WHERE version_id IN {members} "
                   "ORDER BY key"),
            (data, "SELECT version_id, sha256, kind, source, files, size FROM training_data "
                   f"WHERE version_id IN {members} ORDER BY id"),
        ):  # fmt: skip
            for found in execute(sql, params):
                table.setdefault(found[0], []).append(tuple(found[1:]))
    empty: tuple[Any, ...] = ()
    return [
        (
            row,
            tuple(evals[i]) if i in evals else empty,
            tuple(aliases[i]) if i in aliases else empty,
            tuple(tags[i]) if i in tags else empty,
            tuple(data[i]) if i in data else empty,
        )
        for row, i in zip(rows, ids, strict=True)
    ]


def build(record: Record) -> AdapterVersion:
    """The typed result of a record (a fresh one each call: callers may edit its config)."""
    row, evals, aliases, tags, data = record
    c = _COLUMN
    return AdapterVersion(
        name=row[c["name"]],
        version=row[c["version"]],
        digest=row[c["digest"]],
        manifest=parsed_manifest(row[c["manifest"]]),
        size_bytes=row[c["size_bytes"]],
        status=row[c["status"]],
        status_reason=row[c["status_reason"]],
        created_at=utc_datetime(row[c["created_at"]]),
        created_by=row[c["created_by"]],
        training_data=tuple(TrainingDataInfo(*td) for td in data),
        evals=tuple(
            EvalScore(ev[0], ev[1], ev[2], ev[3], ev[4], utc_datetime(ev[5]), ev[6])
            for ev in evals
        ),
        aliases=tuple(al[0] for al in aliases),
        tags={tag[0]: tag[1] for tag in tags},
        description=row[c["description"]],
    )


# SQLite stores timestamps as text, which plain statements return as is; PostgreSQL's
# driver returns naive datetimes. Both become what the tables' UTCDateTime type gives
# (and so what rows loaded through SQLModel give): datetimes in UTC, with the zone.
def utc_datetime(value: str | datetime) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
