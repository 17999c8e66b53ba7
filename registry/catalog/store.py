"""Catalog queries: the only place that reads or writes catalog rows."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlmodel import Session, col, select

from registry.catalog.engine import make_engine, read_session, write_session
from registry.catalog.schema import SchemaStatus, ensure_schema
from registry.catalog.tables import (
    AdapterVersionRow,
    AliasRow,
    AuditEventRow,
    EvalRow,
    TagRow,
    TrainingDataRow,
    VersionFileRow,
)
from registry.errors import ConflictError, NotFoundError
from registry.manifest import Manifest
from registry.refs import Candidate, Ref, select_version
from registry.results import AdapterVersion, EvalScore, TrainingDataInfo


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class NewVersion:
    """Everything a push records in one transaction."""

    name: str
    version: str | None  # None: allocate the next automatic version
    manifest: Manifest
    actor: str
    training_data: Sequence[TrainingDataInfo] = ()
    evals: Sequence[tuple[str, float, str, str, str]] = ()  # metric, value, dataset, split, notes
    tags: dict[str, str] | None = None
    alias: str | None = None
    base_model_id: int | None = None


@dataclass(frozen=True)
class InsertOutcome:
    row_id: int
    created: bool


@dataclass(frozen=True)
class ListFilter:
    name_glob: str | None = None
    base: str | None = None
    method: str | None = None
    include_yanked: bool = True


class Catalog:
    def __init__(self, url: str, *, upgrade: bool = False) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)
        self.schema: SchemaStatus = ensure_schema(self.engine, upgrade=upgrade)

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
                    existing = session.exec(
                        select(AdapterVersionRow).where(
                            AdapterVersionRow.name == new.name, AdapterVersionRow.digest == digest
                        )
                    ).first()
                    if existing is not None:
                        assert existing.id is not None
                        return InsertOutcome(existing.id, created=False)
                    versions = list(
                        session.exec(
                            select(AdapterVersionRow.version).where(
                                AdapterVersionRow.name == new.name
                            )
                        )
                    )
                    version = new.version or next_version(versions)
                    if new.version is not None:
                        self._refuse_taken_version(session, new.name, new.version, versions)
                    row_id = self._insert(session, new, version, digest)
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
        for metric, value, dataset, split, notes in new.evals:
            session.add(
                EvalRow(
                    version_id=row.id,
                    metric=metric,
                    value=value,
                    dataset=dataset,
                    split=split,
                    notes=notes,
                    recorded_at=now,
                    actor=new.actor,
                )
            )
        for key, tag_value in (new.tags or {}).items():
            session.add(TagRow(version_id=row.id, key=key, value=tag_value))
        if new.alias is not None:
            self._move_alias(session, new.name, new.alias, row.id, now)
        self._event(
            session,
            new.actor,
            "push",
            new.name,
            version,
            {"digest": digest, "method": manifest.method, "alias": new.alias},
        )
        return row.id

    @staticmethod
    def _move_alias(
        session: Session, name: str, alias: str, version_id: int, now: datetime
    ) -> None:
        current = session.get(AliasRow, (name, alias))
        if current is None:
            session.add(AliasRow(name=name, alias=alias, version_id=version_id, updated_at=now))
        else:
            current.version_id = version_id
            current.updated_at = now
            session.add(current)

    @staticmethod
    def _event(
        session: Session,
        actor: str,
        action: str,
        name: str | None,
        version: str | None,
        details: dict[str, Any],
    ) -> None:
        session.add(
            AuditEventRow(
                at=utcnow(),
                actor=actor,
                action=action,
                name=name,
                version=version,
                details=json.dumps(details, sort_keys=True),
            )
        )

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
        pairs = session.exec(
            select(AdapterVersionRow.version, AdapterVersionRow.status).where(
                AdapterVersionRow.name == ref.name
            )
        ).all()
        chosen = select_version(ref, [Candidate(v, s == "yanked") for v, s in pairs])
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
        query = select(AdapterVersionRow)
        if flt.name_glob:
            query = query.where(
                # Names are lowercase, so matching the lowered glob is case-insensitive on
                # every backend (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
                col(AdapterVersionRow.name).like(
                    _glob_to_like(flt.name_glob.lower()), escape="\\"
                )
            )
        if flt.base:
            name, _, revision = flt.base.partition("@")
            query = query.where(AdapterVersionRow.base_name == name)
            if revision:
                query = query.where(AdapterVersionRow.base_revision == revision)
        if flt.method:
            query = query.where(AdapterVersionRow.method == flt.method.lower())
        if not flt.include_yanked:
            query = query.where(AdapterVersionRow.status != "yanked")
        query = query.order_by(col(AdapterVersionRow.name), col(AdapterVersionRow.id))
        with read_session(self.engine) as session:
            return self._load(session, list(session.exec(query)))

    def count_versions(self) -> int:
        with read_session(self.engine) as session:
            return int(session.exec(select(func.count()).select_from(AdapterVersionRow)).one())

    def _load(self, session: Session, rows: Sequence[AdapterVersionRow]) -> list[AdapterVersion]:
        """Rows to typed results, with annotations fetched in one query per table."""
        ids = [row.id for row in rows if row.id is not None]
        if not ids:
            return []
        evals: dict[int, list[EvalScore]] = {}
        for ev in session.exec(
            select(EvalRow).where(col(EvalRow.version_id).in_(ids)).order_by(col(EvalRow.id))
        ):
            evals.setdefault(ev.version_id, []).append(
                EvalScore(
                    ev.metric, ev.value, ev.dataset, ev.split, ev.notes, ev.recorded_at, ev.actor
                )
            )
        aliases: dict[int, list[str]] = {}
        for al in session.exec(
            select(AliasRow).where(col(AliasRow.version_id).in_(ids)).order_by(col(AliasRow.alias))
        ):
            aliases.setdefault(al.version_id, []).append(al.alias)
        tags: dict[int, dict[str, str]] = {}
        for tag in session.exec(
            select(TagRow).where(col(TagRow.version_id).in_(ids)).order_by(col(TagRow.key))
        ):
            tags.setdefault(tag.version_id, {})[tag.key] = tag.value
        data: dict[int, list[TrainingDataInfo]] = {}
        for td in session.exec(
            select(TrainingDataRow)
            .where(col(TrainingDataRow.version_id).in_(ids))
            .order_by(col(TrainingDataRow.id))
        ):
            data.setdefault(td.version_id, []).append(
                TrainingDataInfo(td.sha256, td.kind, td.source, td.files, td.size)
            )
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


def _glob_to_like(glob: str) -> str:
    out = []
    for char in glob:
        if char in "%_\\":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)
