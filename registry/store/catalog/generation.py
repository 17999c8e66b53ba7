"""Whether anything was committed to the catalog since a moment: a value that changes with
every committed write, by this process or any other, so answers derived from catalog rows
can be kept until it changes.

- SQLite: ``PRAGMA data_version`` on a connection of its own that never writes. SQLite
  changes it whenever another connection (in this process or another) commits; reading
  it touches only the shared WAL index, a few microseconds.
- PostgreSQL: ``pg_current_snapshot()``. A committed write either leaves the list of
  transactions in progress or moves ``xmax``, so equal text means nothing committed in
  between (writes to other databases of the cluster only cost a cache miss).
- Any other database: no value (``None``), so nothing is kept.

Read the value *before* reading the rows an answer is made of, and keep the answer under
that value: a commit landing between the two changes the value, so the answer is thrown
away at the next look rather than kept stale.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DatabaseError as SqlDatabaseError

from registry.store.catalog.engine import BUSY_TIMEOUT_MS, sqlite_file, wrap_operational


class CatalogGeneration:
    """``current()``: a value equal between two calls only if no write committed between."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._sqlite: sqlite3.Connection | None = None
        url = engine.url.render_as_string(hide_password=False)
        self._file = sqlite_file(url) if engine.dialect.name == "sqlite" else None
        self.postgresql = engine.dialect.name == "postgresql"

    @property
    def cheap(self) -> bool:
        """Whether ``current()`` is quick enough to call on an event loop (no network)."""
        return self._file is not None

    def current(self) -> Any:
        if self._file is not None:
            return self._sqlite_version()
        if self.postgresql:
            with wrap_operational(self.engine), self.engine.connect() as connection:
                return connection.execute(text("SELECT pg_current_snapshot()::text")).scalar()
        return None

    def _sqlite_version(self) -> int:
        assert self._file is not None
        with self._lock:
            if self._sqlite is None:
                # Autocommit: a read transaction left open would pin an old snapshot.
                self._sqlite = sqlite3.connect(
                    self._file, timeout=BUSY_TIMEOUT_MS / 1000,
                    check_same_thread=False, isolation_level=None,
                )  # fmt: skip
            row = self._sqlite.execute("PRAGMA data_version").fetchone()
            return int(row[0])

    def read(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]] | None:
        """Rows of a small indexed read on the same connection, on the calling thread
        (microseconds on SQLite, so an event loop may call it); None on other databases."""
        if self._file is None:
            return None
        try:
            self._sqlite_version()  # opens the connection on first use
            with self._lock:
                assert self._sqlite is not None
                return self._sqlite.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            # As SQLAlchemy raises it, for wrap_operational to turn into a CatalogError.
            raise SqlDatabaseError(sql, params, exc) from exc

    def close(self) -> None:
        with self._lock:
            if self._sqlite is not None:
                self._sqlite.close()
                self._sqlite = None
