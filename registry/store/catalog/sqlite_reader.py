"""Reading a SQLite catalog with the standard library's ``sqlite3``, for commands that
only read (``adapters list``, ``show``): they then start without importing SQLAlchemy and
SQLModel, which cost several times the interpreter's own start-up.

It runs the very statements ``Catalog`` runs through SQLAlchemy (``listing``,
``resolve`` and ``version_rows``), so both give the same results. It opens only a catalog at the
schema version of this release; anything else (missing, older, newer, unreadable) is
left to ``Catalog``, whose messages say what to do.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from registry.store.catalog.listing import (
    ListFilter,
    count_matching,
    list_versions,
    version_pages,
)
from registry.store.catalog.resolve import resolve_row
from registry.store.catalog.schema_version import SCHEMA_VERSION, VERSION_KEY
from registry.store.catalog.version_rows import Execute, load_rows
from registry.store.refs import Ref
from registry.store.results import AdapterVersion

BUSY_TIMEOUT_S = 30.0
T = TypeVar("T")


class SqliteReader:
    """Read-only queries on one SQLite catalog file."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @classmethod
    def open(cls, path: Path) -> SqliteReader | None:
        """A reader of the catalog at ``path``, or None when ``Catalog`` should open it."""
        if not path.is_file():
            return None
        try:
            # mode=rw: never creates a missing file; query_only: never writes to it.
            connection = sqlite3.connect(
                f"file:{quote(str(path))}?mode=rw",
                uri=True,
                timeout=BUSY_TIMEOUT_S,
                isolation_level=None,
            )
        except sqlite3.Error:
            return None
        try:
            connection.execute("PRAGMA query_only = ON")
            row = connection.execute(
                "SELECT value FROM schema_info WHERE key = ?", (VERSION_KEY,)
            ).fetchone()
        except sqlite3.Error:
            row = None
        if row is None or str(row[0]) != str(SCHEMA_VERSION):
            connection.close()
            return None
        return cls(connection)

    def _execute(self, sql: str, params: Mapping[str, Any]) -> Sequence[Any]:
        return self._connection.execute(sql, params).fetchall()

    def list_versions(self, flt: ListFilter) -> list[AdapterVersion]:
        # One read transaction: the ids and the rows they load come from one snapshot.
        with self._snapshot():
            return list_versions(self._execute, flt, "sqlite")

    def version_pages(self, flt: ListFilter) -> Iterator[list[AdapterVersion]]:
        return version_pages(self._page_reader, flt, "sqlite")

    @contextmanager
    def _page_reader(self) -> Iterator[Execute]:
        with self._snapshot():
            yield self._execute

    def read(self, reading: Callable[[Execute], T]) -> T:
        """``reading`` run on one snapshot of the catalog."""
        with self._page_reader() as execute:
            return reading(execute)

    def resolve(self, ref: Ref) -> AdapterVersion:
        with self._page_reader() as execute:
            return load_rows(execute, [resolve_row(execute, ref)])[0]

    def count_matching(self, flt: ListFilter) -> int:
        return count_matching(self._execute, flt)

    @contextmanager
    def _snapshot(self) -> Iterator[None]:
        self._connection.execute("BEGIN")
        try:
            yield
        finally:
            self._connection.execute("COMMIT")

    def close(self) -> None:
        self._connection.close()

