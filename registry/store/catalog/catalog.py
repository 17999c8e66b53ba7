"""Catalog queries: the only place that reads or writes catalog rows."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DatabaseError as SqlDatabaseError
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlmodel import Session, col, select

from registry.errors import ConflictError, NotFoundError
from registry.faults import fault_point
from registry.store.catalog.engine import (
    make_engine,
    read_session,
    refuse_missing_file,
    wrap_operational,
    write_session,
)
from registry.store.catalog.generation import CatalogGeneration
from registry.store.catalog.history import (
    add_event,
    move_alias,
    refuse_reuse,
    removed_versions,
    utcnow,
)
from registry.store.catalog.lineage_edges import record_lineage
from registry.store.catalog.listing import (
    ListFilter,
    count_matching,
    list_records,
    list_versions,
    version_pages,
)
from registry.store.catalog.manifest_cache import parsed_manifest
from registry.store.catalog.resolve import resolve_row
from registry.store.catalog.schema import SchemaStatus, ensure_schema
from registry.store.catalog.tables import (
    AdapterVersionRow,
    AuditEventRow,
    EvalRow,
    TagRow,
    TrainingDataRow,
    VersionFileRow,
)
from registry.store.catalog.version_order import version_key
from registry.store.catalog.version_rows import (
    VERSION_COLUMNS,
    Execute,
    Record,
    load_ids,
    load_rows,
)
from registry.store.leases import hold_off_gc, release_leases
from registry.store.manifest import Manifest, digest_of
from registry.store.refs import Ref
from registry.store.results import AdapterVersion, EvalScore, TrainingDataInfo
from registry.store.scores import NewScore


@dataclass(frozen=True)
class NewVersion:
    """Everything a push records in one transaction."""

    name: str
    version: str | None  # None: allocate the next automatic version
    manifest: Manifest
    actor: str
    training_data: Sequence[TrainingDataInfo] = ()
    evals: Sequence[NewScore] = ()
    tags: dict[str, str] | None = None
    alias: str | None = None
    base_model_id: int | None = None
    lease: str | None = None  # blob leases of this push, released when it is recorded
    # Stores the version's blobs inside the transaction that records it, with gc held off
    # until it commits (``leases.hold_off_gc``): a push whose digests are all known needs
    # no leases then. Run before the rows are written; may run again on a retry.
    store_blobs: Callable[[], None] | None = None
    # Added to the push's audit event (a server's note that it allowed something).
    audit_details: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class InsertOutcome:
    row_id: int
    created: bool
    # The version as recorded, when this call created it (no read back needed).
    version: AdapterVersion | None = None


class Catalog:
    def __init__(self, url: str, *, upgrade: bool = False, create: bool = False) -> None:
        """Open the catalog at ``url``; only ``create`` makes a new one where there is none
        (a missing or empty catalog is otherwise an error: see ``Registry.open``)."""
        self.url = url
        if not create:
            refuse_missing_file(url)
        self.engine: Engine = make_engine(url)
        with wrap_operational(self.engine):  # an unreachable server is a one-line error
            self.schema: SchemaStatus = ensure_schema(self.engine, upgrade=upgrade, create=create)
        # What every commit changes, and small indexed reads outside any session (on
        # SQLite: one autocommit connection, no pool checkout, no transaction to end).
        self.generation = CatalogGeneration(self.engine)

    def close(self) -> None:
        self.generation.close()
        self.engine.dispose()

    # -- writing -----------------------------------------------------------------

    def insert_version(self, new: NewVersion, next_version: Any) -> InsertOutcome:
        """Record a version, or find the identical one already recorded.

        ``next_version`` maps the existing version strings to the automatic next one.
        Database constraints decide races: a concurrent writer that took the same
        version number makes this attempt fail and retry with the next number.
        """
        canonical = new.manifest.canonical_bytes()  # once: for the digest and the row
        digest = digest_of(canonical)
        for _attempt in range(20):
            try:
                with write_session(self.engine) as session:
                    _queue_writers_of(session, new.name)
                    # The reads before the inserts run as plain SQL (on SQLite by pysqlite
                    # itself), as the inserts do: SQLAlchemy's execution costs more than they.
                    run = _executor(session.connection())
                    same = run(_SAME_CONTENT, {"name": new.name, "digest": digest})
                    existing = next((row[0] for row in same), None)
                    if existing is not None:
                        if new.lease is not None:
                            release_leases(session, new.lease)
                        return InsertOutcome(int(existing), created=False)
                    # A removed version's number keeps meaning its content: automatic
                    # numbers skip it, and only that content may be pushed under it again.
                    removed = removed_versions(run, new.name)
                    if not new.version:
                        version = next_version([*_highest_versions(run, new.name), *removed])
                    else:
                        version = new.version
                        versions = list(
                            session.exec(
                                select(AdapterVersionRow.version).where(
                                    AdapterVersionRow.name == new.name
                                )
                            )
                        )
                        self._refuse_taken_version(session, new.name, new.version, versions)
                        refuse_reuse(new.name, new.version, digest, removed)
                    if new.store_blobs is not None:
                        hold_off_gc(session)
                        new.store_blobs()
                    row_id, created = self._insert(session, new, version, digest, canonical)
                    if new.lease is not None:
                        # Same transaction as the file rows: the blobs pass from leased
                        # to referenced with no moment where gc could take them.
                        release_leases(session, new.lease)
                    fault_point("catalog.insert-version")  # all rows written, not committed
                    return InsertOutcome(row_id, created=True, version=created)
            except SqlIntegrityError as exc:
                if new.version is not None:
                    raise ConflictError(
                        f"{new.name}@{new.version} was just recorded by another writer "
                        "with other content"
                    ) from exc
                continue
        raise ConflictError(
            f"could not allocate a version for {new.name}: too many concurrent writers"
        )

    @staticmethod
    def _refuse_taken_version(
        session: Session, name: str, version: str, versions: Iterable[str]
    ) -> None:
        from packaging.version import Version

        wanted = Version(version)
        for other in versions:
            if Version(other) == wanted:
                row = session.exec(
                    select(AdapterVersionRow).where(
                        AdapterVersionRow.name == name, AdapterVersionRow.version == other
                    )
                ).one()
                raise ConflictError(
                    f"{name}@{other} already exists with other content ({row.digest[:19]}...); "
                    "push under a new version, or omit --version to get the next one"
                )

    def _insert(
        self, session: Session, new: NewVersion, version: str, digest: str, canonical: bytes
    ) -> tuple[int, AdapterVersion]:
        """The version's rows as Core inserts on the session's connection (no ORM unit of
        work: a third of a small push's time), and the version as recorded, built from
        what was inserted rather than read back."""
        manifest = new.manifest
        now = utcnow()
        manifest_text = canonical.decode("utf-8")
        connection = session.connection()
        row_id = _insert_rows(
            connection,
            _VERSIONS,
            [{
                "name": new.name,
                "version": version,
                "version_key": version_key(version),
                "digest": digest,
                "method": manifest.method,
                "source_format": manifest.source_format,
                "base_model_id": new.base_model_id,
                "base_name": manifest.base_model.name,
                "base_revision": manifest.base_model.revision,
                "base_fingerprint": manifest.base_model.fingerprint,
                "manifest": manifest_text,
                "size_bytes": sum(f.size for f in manifest.files),
                "status": "active",
                "created_at": now,
                "created_by": new.actor,
            }],
        )  # fmt: skip
        files = [
            {"version_id": row_id, "path": f.path, "sha256": f.sha256, "size": f.size,
             "role": f.role}
            for f in manifest.files
        ]  # fmt: skip
        if files:
            _insert_rows(connection, _FILES, files)
        data = [
            {"version_id": row_id, "sha256": d.sha256, "kind": d.kind, "source": d.source,
             "files": d.files, "size": d.size}
            for d in new.training_data
        ]  # fmt: skip
        if data:
            _insert_rows(connection, _DATA, data)
        scores = [
            {"version_id": row_id, "metric": s.metric, "value": s.value, "dataset": s.dataset,
             "split": s.split, "notes": s.notes, "recorded_at": now, "actor": new.actor}
            for s in new.evals
        ]  # fmt: skip
        if scores:
            _insert_rows(connection, _EVALS, scores)
        tags = dict(sorted((new.tags or {}).items()))
        if tags:
            rows = [{"version_id": row_id, "key": k, "value": v} for k, v in tags.items()]
            _insert_rows(connection, _TAGS, rows)
        record_lineage(session, row_id, manifest)
        if new.alias is not None:
            row = session.get(AdapterVersionRow, row_id)
            assert row is not None
            move_alias(session, row, new.alias, new.actor, action="push")
        details = {
            "digest": digest,
            "method": manifest.method,
            "alias": new.alias,
            "operation": manifest.lineage.operation if manifest.lineage else None,
            **(new.audit_details or {}),
        }
        _insert_rows(
            connection,
            _EVENTS,
            [{
                "at": now,
                "actor": new.actor,
                "action": "push",
                "name": new.name,
                "version": version,
                "details": json.dumps(details, sort_keys=True, default=str),
            }],
        )  # fmt: skip
        # What a read of the new row would give (version_rows.load_rows): its manifest
        # parsed from the stored text, annotations in the order they are read.
        return row_id, AdapterVersion(
            name=new.name,
            version=version,
            digest=digest,
            manifest=parsed_manifest(manifest_text),
            size_bytes=sum(f.size for f in manifest.files),
            status="active",
            status_reason=None,
            created_at=now,
            created_by=new.actor,
            training_data=tuple(new.training_data),
            evals=tuple(
                EvalScore(s.metric, float(s.value), s.dataset, s.split, s.notes, now, new.actor)
                for s in new.evals
            ),
            aliases=(new.alias,) if new.alias is not None else (),
            tags=tags,
        )

    @staticmethod
    def _event(
        session: Session,
        actor: str,
        action: str,
        name: str | None,
        version: str | None,
        details: dict[str, Any],
    ) -> None:
        add_event(session, actor, action, name, version, details)

    # -- reading -----------------------------------------------------------------

    def resolve(self, ref: Ref) -> AdapterVersion:
        with self.plain_reader() as execute:
            return load_rows(execute, [resolve_row(execute, ref)])[0]

    def get_by_id(self, row_id: int) -> AdapterVersion:
        # Plain SQL, as get_many: no ORM object to build and map back (a push reads its
        # new version this way).
        found = self.get_many([row_id])
        if not found:
            raise NotFoundError(f"no adapter version with id {row_id}")
        return found[0]

    def list_versions(self, flt: ListFilter) -> list[AdapterVersion]:
        """Versions matching every filter of ``flt``, in its order (see ``listing.py``)."""
        with read_session(self.engine) as session:
            connection = session.connection()
            return list_versions(_executor(connection), flt, connection.dialect.name)

    def list_records(self, flt: ListFilter) -> list[Record]:
        """``list_versions(flt)`` as the records its results are built from (for answers
        derived from them and kept by them: the server's list entries)."""
        with read_session(self.engine) as session:
            connection = session.connection()
            return list_records(_executor(connection), flt, connection.dialect.name)

    def version_pages(self, flt: ListFilter) -> Iterator[list[AdapterVersion]]:
        """``list_versions(flt)`` a page at a time, each read in its own session."""
        return version_pages(self.plain_reader, flt, self.engine.dialect.name)

    @contextmanager
    def plain_reader(self) -> Iterator[Execute]:
        """One read session, running plain SQL statements (``listing``, ``resolve``)."""
        with read_session(self.engine) as session:
            yield _executor(session.connection())

    def count_matching(self, flt: ListFilter) -> int:
        """How many versions match ``flt``'s filters (its order and limit aside)."""
        with read_session(self.engine) as session:
            return count_matching(_executor(session.connection()), flt)

    def get_many(self, ids: Sequence[int]) -> list[AdapterVersion]:
        """The versions with these ids, in this order (unknown ids are skipped)."""
        with read_session(self.engine) as session:
            return load_ids(_executor(session.connection()), ids)

    def count_versions(self) -> int:
        with read_session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(AdapterVersionRow)).one())

    def _load(self, session: Session, rows: Sequence[AdapterVersionRow]) -> list[AdapterVersion]:
        """Mapped rows to typed results, with their annotations (``version_rows``)."""
        plain = [tuple(getattr(row, column) for column in VERSION_COLUMNS) for row in rows]
        return load_rows(_executor(session.connection()), plain)

    def referenced_blobs(self) -> set[str]:
        with read_session(self.engine) as session:
            return set(session.exec(select(VersionFileRow.sha256).distinct()))

    def audit_events(self, name: str | None = None) -> list[AuditEventRow]:
        query = select(AuditEventRow).order_by(col(AuditEventRow.id))
        if name is not None:
            query = query.where(AuditEventRow.name == name)
        with read_session(self.engine) as session:
            return list(session.exec(query))


def _queue_writers_of(session: Session, name: str) -> None:
    """On PostgreSQL, make the writers of one name take turns (until commit).

    Without it, concurrent writers all read the same highest version, all but one
    clash on the unique constraint and retry; eight writers on one name ran out of
    retries. SQLite writers already take turns (BEGIN IMMEDIATE). The constraints stay
    the guarantee; this only keeps writers from starving.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:name))"),
            {"space": _VERSION_LOCK_SPACE, "name": name},
        )


_VERSION_LOCK_SPACE = 7_245_002  # advisory lock keys: (space, hash of the name)


def _executor(connection: Connection) -> Execute:
    """Plain SQL statements of ``listing`` and ``version_rows`` run through SQLAlchemy,
    or on SQLite by pysqlite itself, in the connection's transaction: SQLAlchemy's
    statement and row objects cost more than reading the rows (1,000 versions: 12 ms
    against 7)."""
    if connection.dialect.name == "sqlite":
        driver = connection.connection.driver_connection
        assert isinstance(driver, sqlite3.Connection)

        def execute_sqlite(sql: str, params: Mapping[str, Any]) -> Sequence[Any]:
            try:
                return driver.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as exc:
                # As SQLAlchemy raises it, for wrap_operational to turn into a CatalogError.
                raise SqlDatabaseError(sql, dict(params), exc) from exc

        return execute_sqlite

    def execute(sql: str, params: Mapping[str, Any]) -> Sequence[Any]:
        return connection.execute(text(sql), dict(params)).all()

    return execute


def _insert_rows(connection: Connection, table: Any, rows: list[dict[str, Any]]) -> int:
    """Insert ``rows`` (one dict per row, the same columns) on the session's connection,
    in its transaction; the id of the last row. On SQLite by pysqlite itself, like the
    reads (``_executor``): SQLAlchemy's execution of a Core insert costs several times
    the insert. Every column is given (no Python-side default is left to fill), and
    datetimes are written as SQLAlchemy's SQLite dialect writes them."""
    if connection.dialect.name != "sqlite":
        result = connection.execute(insert(table), rows[0] if len(rows) == 1 else rows)
        key = result.inserted_primary_key if len(rows) == 1 else None
        return int(key[0]) if key is not None and key[0] is not None else 0
    driver = connection.connection.driver_connection
    assert isinstance(driver, sqlite3.Connection)
    columns = list(rows[0])
    names = ", ".join(f'"{column}"' for column in columns)
    values = ", ".join(f":{column}" for column in columns)
    sql = f'INSERT INTO "{table.name}" ({names}) VALUES ({values})'
    try:
        cursor = None
        for row in rows:
            cursor = driver.execute(sql, {k: _sqlite_value(v) for k, v in row.items()})
    except sqlite3.IntegrityError as exc:  # as SQLAlchemy raises it: a race to retry
        raise SqlIntegrityError(sql, None, exc) from exc
    except sqlite3.DatabaseError as exc:
        raise SqlDatabaseError(sql, None, exc) from exc
    assert cursor is not None and cursor.lastrowid is not None
    return int(cursor.lastrowid)


def _sqlite_value(value: Any) -> Any:
    # SQLAlchemy's SQLite DateTime storage format (its default, microseconds always).
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _highest_versions(run: Execute, name: str) -> list[str]:
    """The name's highest versions by their order key (versions equal under PEP 440 share
    it): all that the next automatic number depends on, read through the (name, key)
    index instead of every version of the name."""
    return [row[0] for row in run(_HIGHEST, {"name": name})]


# Plain statements of the write path, parsed once (an ORM select of a row costs more than
# the rest of a small push's inserts).
_SAME_CONTENT = "SELECT id FROM adapter_versions WHERE name = :name AND digest = :digest"
# The key column is NOT NULL (schema_steps). An "OR version_key IS NULL" here made SQLite
# read every version of the name (0.18 ms at 1,000 versions, against 7 microseconds).
_HIGHEST = (
    "SELECT version FROM adapter_versions WHERE name = :name AND version_key = "
    "(SELECT max(version_key) FROM adapter_versions WHERE name = :name)"
)

# The tables a push writes, for Core inserts.
_VERSIONS = AdapterVersionRow.__table__  # type: ignore[attr-defined]
_FILES = VersionFileRow.__table__  # type: ignore[attr-defined]
_DATA = TrainingDataRow.__table__  # type: ignore[attr-defined]
_EVALS = EvalRow.__table__  # type: ignore[attr-defined]
_TAGS = TagRow.__table__  # type: ignore[attr-defined]
_EVENTS = AuditEventRow.__table__  # type: ignore[attr-defined]
