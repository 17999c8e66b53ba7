"""Catalog queries: the only place that reads or writes catalog rows."""

from __future__ import annotations

import sqlite3
from collections import namedtuple
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import String, func, text, type_coerce
from sqlalchemy import select as sa_select
from sqlalchemy.engine import Engine
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
from registry.store.catalog.history import (
    add_event,
    move_alias,
    refuse_reuse,
    removed_versions,
    utcnow,
)
from registry.store.catalog.lineage_edges import record_lineage
from registry.store.catalog.listing import (
    filter_clauses,
    id_query,
    ordered_ids,
    ordered_rows,
)
from registry.store.catalog.resolve import choose
from registry.store.catalog.schema import SchemaStatus, ensure_schema
from registry.store.catalog.tables import (
    AdapterVersionRow,
    AliasRow,
    AuditEventRow,
    EvalRow,
    TagRow,
    TrainingDataRow,
    VersionFileRow,
)
from registry.store.conditions import Condition
from registry.store.leases import release_leases
from registry.store.manifest import Manifest
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


@dataclass(frozen=True)
class InsertOutcome:
    row_id: int
    created: bool


@dataclass(frozen=True)
class ListFilter:
    """What ``list`` selects, compiled from a ``ListQuery`` (``store/list_query.py``);
    every given filter must hold (see ``catalog/listing.py``)."""

    name_glob: str | None = None
    base: str | None = None  # NAME[@REVISION], or a base fingerprint sha256:HEX (12+ digits)
    method: str | None = None
    include_yanked: bool = True
    status: str | None = None  # "active" | "yanked"
    alias: str | None = None
    tags: tuple[tuple[str, str | None], ...] = ()  # (key, value); value None: key present
    data_sha256: str | None = None  # training data digest, sha256:HEX (12+ digits)
    where: tuple[Condition, ...] = ()
    sort: str = "name"  # name | version | created | METRIC[@DATASET]
    reverse: bool = False
    limit: int | None = None


class Catalog:
    def __init__(self, url: str, *, upgrade: bool = False, create: bool = False) -> None:
        """Open the catalog at ``url``; only ``create`` makes a new one where there is none
        (a missing or empty catalog is otherwise an error: see ``Registry.open``)."""
        self.url = url
        if not create:
            refuse_missing_file(url)
        self.engine: Engine = make_engine(url)
        with wrap_operational(self.engine):  # an unreachable server is a one-line error
            self.schema: SchemaStatus = ensure_schema(
                self.engine, upgrade=upgrade, create=create
            )

    def close(self) -> None:
        self.engine.dispose()

    # -- writing -----------------------------------------------------------------

    def insert_version(self, new: NewVersion, next_version: Any) -> InsertOutcome:
        """Record a version, or find the identical one already recorded.

        ``next_version`` maps the existing version strings to the automatic next one.
        Database constraints decide races: a concurrent writer that took the same
        version number makes this attempt fail and retry with the next number.
        """
        digest = new.manifest.digest
        for _attempt in range(20):
            try:
                with write_session(self.engine) as session:
                    _queue_writers_of(session, new.name)
                    existing = session.exec(
                        select(AdapterVersionRow).where(
                            AdapterVersionRow.name == new.name, AdapterVersionRow.digest == digest
                        )
                    ).first()
                    if existing is not None:
                        assert existing.id is not None
                        if new.lease is not None:
                            release_leases(session, new.lease)
                        return InsertOutcome(existing.id, created=False)
                    versions = list(
                        session.exec(
                            select(AdapterVersionRow.version).where(
                                AdapterVersionRow.name == new.name
                            )
                        )
                    )
                    # A removed version's number keeps meaning its content: automatic
                    # numbers skip it, and only that content may be pushed under it again.
                    removed = removed_versions(session, new.name)
                    version = new.version or next_version([*versions, *removed])
                    if new.version is not None:
                        self._refuse_taken_version(session, new.name, new.version, versions)
                        refuse_reuse(new.name, new.version, digest, removed)
                    row_id = self._insert(session, new, version, digest)
                    if new.lease is not None:
                        # Same transaction as the file rows: the blobs pass from leased
                        # to referenced with no moment where gc could take them.
                        release_leases(session, new.lease)
                    fault_point("catalog.insert-version")  # all rows written, not committed
                    return InsertOutcome(row_id, created=True)
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

    def _insert(self, session: Session, new: NewVersion, version: str, digest: str) -> int:
        manifest = new.manifest
        now = utcnow()
        row = AdapterVersionRow(
            name=new.name,
            version=version,
            digest=digest,
            method=manifest.method,
            source_format=manifest.source_format,
            base_model_id=new.base_model_id,
            base_name=manifest.base_model.name,
            base_revision=manifest.base_model.revision,
            base_fingerprint=manifest.base_model.fingerprint,
            manifest=manifest.canonical_bytes().decode("utf-8"),
            size_bytes=sum(f.size for f in manifest.files),
            created_at=now,
            created_by=new.actor,
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        for entry in manifest.files:
            session.add(
                VersionFileRow(
                    version_id=row.id,
                    path=entry.path,
                    sha256=entry.sha256,
                    size=entry.size,
                    role=entry.role,
                )
            )
        for data in new.training_data:
            session.add(
                TrainingDataRow(
                    version_id=row.id,
                    sha256=data.sha256,
                    kind=data.kind,
                    source=data.source,
                    files=data.files,
                    size=data.size,
                )
            )
        for score in new.evals:
            session.add(
                EvalRow(
                    version_id=row.id,
                    metric=score.metric,
                    value=score.value,
                    dataset=score.dataset,
                    split=score.split,
                    notes=score.notes,
                    recorded_at=now,
                    actor=new.actor,
                )
            )
        for key, tag_value in (new.tags or {}).items():
            session.add(TagRow(version_id=row.id, key=key, value=tag_value))
        record_lineage(session, row.id, manifest)
        if new.alias is not None:
            move_alias(session, row, new.alias, new.actor, action="push")
        self._event(
            session,
            new.actor,
            "push",
            new.name,
            version,
            {
                "digest": digest,
                "method": manifest.method,
                "alias": new.alias,
                "operation": manifest.lineage.operation if manifest.lineage else None,
            },
        )
        return row.id

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
        with read_session(self.engine) as session:
            row = self._resolve_row(session, ref)
            return self._load(session, [row])[0]

    def _resolve_row(self, session: Session, ref: Ref) -> AdapterVersionRow:
        by_name = select(AdapterVersionRow).where(AdapterVersionRow.name == ref.name)
        if ref.kind == "alias":
            alias = session.get(AliasRow, (ref.name, ref.value))
            if alias is None:
                self._require_name(session, ref.name)
                raise NotFoundError(f"{ref.name} has no alias {ref.value!r}")
            row = session.get(AdapterVersionRow, alias.version_id)
            assert row is not None  # the foreign key guarantees it
            return row
        if ref.kind == "digest":
            matches = list(
                session.exec(
                    by_name.where(col(AdapterVersionRow.digest).startswith(f"sha256:{ref.value}"))
                )
            )
            if not matches:
                self._require_name(session, ref.name)
                raise NotFoundError(f"{ref.name} has no version with digest sha256:{ref.value}")
            if len(matches) > 1:
                raise NotFoundError(
                    f"digest prefix sha256:{ref.value} is ambiguous for {ref.name}; "
                    "give more digits"
                )
            return matches[0]
        # Reads the name's versions highest first from an index, not all of them.
        chosen = choose(session, ref)
        return session.exec(by_name.where(AdapterVersionRow.version == chosen.version)).one()

    @staticmethod
    def _require_name(session: Session, name: str) -> None:
        found = session.exec(
            select(AdapterVersionRow.id).where(AdapterVersionRow.name == name).limit(1)
        ).first()
        if found is None:
            raise NotFoundError(f"no adapter named {name!r}")

    def get_by_id(self, row_id: int) -> AdapterVersion:
        with read_session(self.engine) as session:
            row = session.get(AdapterVersionRow, row_id)
            if row is None:
                raise NotFoundError(f"no adapter version with id {row_id}")
            return self._load(session, [row])[0]

    def list_versions(self, flt: ListFilter) -> list[AdapterVersion]:
        """Versions matching every filter of ``flt``, in its order (see ``listing.py``)."""
        with read_session(self.engine) as session:
            connection = session.connection()
            if flt.limit is None:
                # Every match is loaded anyway: read whole rows in one go.
                rows = connection.execute(id_query(flt, whole_rows=True)).all()
                return self._load(
                    session, [_VersionColumns._make(r) for r in ordered_rows(rows, flt)]
                )
            rows = connection.execute(id_query(flt, dialect=connection.dialect.name)).all()
            return self._load_ids(session, ordered_ids(rows, flt))

    def count_matching(self, flt: ListFilter) -> int:
        """How many versions match ``flt``'s filters (its order and limit aside)."""
        query = select(func.count()).select_from(AdapterVersionRow).where(*filter_clauses(flt))
        with read_session(self.engine) as session:
            return int(session.exec(query).one())

    def get_many(self, ids: Sequence[int]) -> list[AdapterVersion]:
        """The versions with these ids, in this order (unknown ids are skipped)."""
        with read_session(self.engine) as session:
            return self._load_ids(session, ids)

    def _load_ids(self, session: Session, ids: Sequence[int]) -> list[AdapterVersion]:
        # Plain column tuples, not ORM objects: building thousands of mapped instances
        # would cost more than the query itself.
        table = AdapterVersionRow.__table__  # type: ignore[attr-defined]
        by_id: dict[int, Any] = {}
        for chunk in _chunks(ids):
            for row in session.connection().execute(sa_select(table).where(table.c.id.in_(chunk))):
                by_id[row[0]] = _VersionColumns._make(row)
        return self._load(session, [by_id[i] for i in ids if i in by_id])

    def count_versions(self) -> int:
        with read_session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(AdapterVersionRow)).one())

    def _load(self, session: Session, rows: Sequence[Any]) -> list[AdapterVersion]:
        """Rows (mapped or plain, with the adapter_versions columns as attributes) to typed
        results, with annotations fetched in one query per table and chunk."""
        ids = [row.id for row in rows if row.id is not None]
        if not ids:
            return []
        evals: dict[int, list[EvalScore]] = {}
        aliases: dict[int, list[str]] = {}
        tags: dict[int, dict[str, str]] = {}
        data: dict[int, list[TrainingDataInfo]] = {}
        # Core statements on the connection: the ORM layer would add per-row overhead.
        connection = session.connection()
        recorded_at, to_datetime = _fast_timestamps(connection.dialect.name, EvalRow.recorded_at)
        # In chunks: backends cap the number of bound parameters in one statement.
        for chunk in _chunks(ids):
            for ev in connection.execute(
                _columns(EvalRow, "version_id", "metric", "value", "dataset", "split", "notes")
                .add_columns(recorded_at, col(EvalRow.actor))
                .where(col(EvalRow.version_id).in_(chunk))
                .order_by(col(EvalRow.id))
            ):
                evals.setdefault(ev[0], []).append(
                    EvalScore(ev[1], ev[2], ev[3], ev[4], ev[5], to_datetime(ev[6]), ev[7])
                )
            for al in connection.execute(
                _columns(AliasRow, "version_id", "alias")
                .where(col(AliasRow.version_id).in_(chunk))
                .order_by(col(AliasRow.alias))
            ):
                aliases.setdefault(al[0], []).append(al[1])
            for tag in connection.execute(
                _columns(TagRow, "version_id", "key", "value")
                .where(col(TagRow.version_id).in_(chunk))
                .order_by(col(TagRow.key))
            ):
                tags.setdefault(tag[0], {})[tag[1]] = tag[2]
            for td in connection.execute(
                _columns(TrainingDataRow, "version_id", "sha256", "kind", "source", "files", "size")
                .where(col(TrainingDataRow.version_id).in_(chunk))
                .order_by(col(TrainingDataRow.id))
            ):
                data.setdefault(td[0], []).append(TrainingDataInfo(*td[1:]))
        results = []
        for row in rows:
            assert row.id is not None
            results.append(
                AdapterVersion(
                    name=row.name,
                    version=row.version,
                    digest=row.digest,
                    manifest=Manifest.from_json(row.manifest),
                    size_bytes=row.size_bytes,
                    status=row.status,
                    status_reason=row.status_reason,
                    created_at=row.created_at,
                    created_by=row.created_by,
                    training_data=tuple(data.get(row.id, ())),
                    evals=tuple(evals.get(row.id, ())),
                    aliases=tuple(aliases.get(row.id, ())),
                    tags=tags.get(row.id, {}),
                    description=row.description,
                )
            )
        return results

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

# Bound parameters per IN list: SQLite before 3.32 allowed 999 per statement.
_CHUNK = 5000 if sqlite3.sqlite_version_info >= (3, 32) else 900


def _fast_timestamps(dialect: str, column: Any) -> tuple[Any, Callable[[Any], datetime]]:
    """A timestamp column and its converter to an aware UTC datetime.

    SQLite stores text; parsing it with ``datetime.fromisoformat`` is several times
    faster than the generic type processing, which shows on thousands of evals.
    """
    if dialect != "sqlite":
        return col(column), _as_utc
    return type_coerce(column, String), _parse_utc


def _as_utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _parse_utc(value: str) -> datetime:
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


# adapter_versions columns as a namedtuple: attribute access on SQLAlchemy rows is
# slow enough to show in listings of thousands of versions.
_VersionColumns = namedtuple(  # type: ignore[misc]
    "_VersionColumns",
    [c.name for c in AdapterVersionRow.__table__.columns],  # type: ignore[attr-defined]
)


def _columns(model: Any, *names: str) -> Any:
    return sa_select(*(getattr(model.__table__.c, name) for name in names))


def _chunks(ids: Sequence[int]) -> list[Sequence[int]]:
    return [ids[i : i + _CHUNK] for i in range(0, len(ids), _CHUNK)]
