"""Database engines: SQLite in WAL mode by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

import re
import sqlite3
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DatabaseError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SAWarning,
)
from sqlmodel import Session, create_engine

from registry.errors import CatalogError, CatalogMissingError

BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "registry_write"


# Query parameters drivers accept credentials in (libpq takes ?password=...).
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd", "sslpassword", "token", "secret"})


def redacted_url(url: str) -> str:
    """``url`` fit for a message or a log: its password and password-like parameters masked."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<unparseable URL>"
    except ValueError:
        # A URL with a bad port: shown without its query, whatever precedes "@" masked.
        shown = url.split("?")[0]
        if "@" in shown:
            shown = re.sub(r"://.*@", "://***@", shown)
        return shown
    query = {
        key: "redacted" if key.lower() in _SECRET_QUERY_KEYS else value
        for key, value in parsed.query.items()
    }
    return parsed.set(query=query).render_as_string(hide_password=True)


_redacted = redacted_url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for other databases and in-memory ones)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None
    return Path(database)


def refuse_missing_file(url: str) -> None:
    """A SQLite catalog file that is not there is an error, never a new empty catalog."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        raise CatalogMissingError(
            f"the catalog {path} is missing; restore it from a backup (`adapters doctor` "
            f"explains), or start an empty one with `adapters init --new-catalog`"
        )


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise CatalogError(
            f"invalid database URL {_redacted(url)}: {_one_line(exc)}; fix ADAPTERS_DATABASE_URL"
        ) from None
    try:
        if parsed.get_backend_name() == "sqlite":
            with warnings.catch_warnings():
                # pysqlite only warns about query options it ignores: refuse them.
                warnings.simplefilter("error", SAWarning)
                engine = create_engine(
                    url,
                    connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
                )
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise CatalogError(
            f"no database driver for {_redacted(url)}: {exc}; for PostgreSQL install "
            "'psycopg[binary]' and use a postgresql+psycopg:// URL"
        ) from None
    except (ArgumentError, SAWarning, TypeError, ValueError) as exc:
        raise CatalogError(
            f"invalid database URL {_redacted(url)}: {_one_line(exc)}; fix ADAPTERS_DATABASE_URL"
        ) from None
    return engine


def _one_line(exc: BaseException | None) -> str:
    text = str(exc).split(" (Background on this", 1)[0]
    return " ".join(text.split())[:300]


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take the write
    # lock up front; take control so writers use BEGIN IMMEDIATE and never have to
    # upgrade a read lock (which is where SQLite deadlocks into "database is locked").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        _enable_wal(cursor)
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _enable_wal(cursor: Any) -> None:
    # Switching the journal mode needs a moment of exclusive access that SQLite does
    # not wait for on the busy timeout, so a connection opened while another creates
    # the schema would fail at once. Only switch when needed, and retry while locked.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with wrap_operational(engine), Session(engine) as session:
        yield session


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction takes the write lock at once and commits on exit."""
    with wrap_operational(engine), engine.connect() as connection:
        connection = connection.execution_options(**{WRITE_OPTION: True})
        with Session(bind=connection) as session, session.begin():
            yield session


@contextmanager
def wrap_operational(engine: Engine) -> Iterator[None]:
    """Turn a database that cannot be reached or used into a ``CatalogError``."""
    try:
        yield
    except IntegrityError:
        # A constraint deciding a race (two writers of one version or alias): the callers
        # that expect it retry, so it passes through unchanged.
        raise
    except DatabaseError as exc:
        # One line: driver messages carry newlines and hints of their own.
        raise CatalogError(_failure(engine, _one_line(exc.orig))) from exc
    except DBAPIError as exc:
        # Connection arguments the driver refuses (an unknown option, a bad port).
        raise CatalogError(_failure(engine, _one_line(exc.orig))) from exc
    except (TypeError, ValueError) as exc:
        if not _raised_by_driver(exc):
            raise
        raise CatalogError(_failure(engine, _one_line(exc))) from exc


def _failure(engine: Engine, reason: str) -> str:
    url = redacted_url(engine.url.render_as_string(hide_password=False))
    hint = "check ADAPTERS_DATABASE_URL and that the server is up"
    if engine.dialect.name == "sqlite":
        hint = "restore the file from a backup; `adapters doctor` explains"
    return f"catalog database {url} failed: {reason}; {hint}"


def _raised_by_driver(exc: BaseException) -> bool:
    # sqlite3.connect and libpq reject unknown URL query options with TypeError or
    # ValueError from their connect call; anything raised by our own code propagates.
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return not str(module).startswith("registry")
