"""Database engines: SQLite in WAL mode by default, any SQLAlchemy URL otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError
from sqlmodel import Session, create_engine

from registry.errors import CatalogError

BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "registry_write"


def _redacted(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def make_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise CatalogError(f"invalid database URL {_redacted(url)!r}") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(
                url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
            )
            _configure_sqlite(engine)
        else:
            engine = create_engine(url, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise CatalogError(
            f"no database driver for {_redacted(url)}: {exc}; for PostgreSQL install "
            "'psycopg[binary]' and use a postgresql+psycopg:// URL"
        ) from None
    return engine


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take the write
    # lock up front; take control so writers use BEGIN IMMEDIATE and never have to
    # upgrade a read lock (which is where SQLite deadlocks into "database is locked").
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    with _wrap_operational(engine), Session(engine) as session:
        yield session


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction takes the write lock at once and commits on exit."""
    with _wrap_operational(engine), engine.connect() as connection:
        connection = connection.execution_options(**{WRITE_OPTION: True})
        with Session(bind=connection) as session, session.begin():
            yield session


@contextmanager
def _wrap_operational(engine: Engine) -> Iterator[None]:
    try:
        yield
    except OperationalError as exc:
        raise CatalogError(
            f"catalog database {_redacted(str(engine.url))} failed: {exc.orig}"
        ) from exc
