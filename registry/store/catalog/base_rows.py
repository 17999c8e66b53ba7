"""Catalog queries for base models and the relations between them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple, Protocol, TypeVar

from sqlalchemy import Row, bindparam
from sqlalchemy import select as sql_select
from sqlmodel import Session, col, or_, select

from registry.errors import ArgumentError, ConflictError, NotFoundError
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.engine import read_session, wrap_operational, write_session
from registry.store.catalog.history import add_event, utcnow
from registry.store.catalog.tables import BaseModelRow, BaseRelationRow
from registry.store.catalog.version_rows import utc_datetime
from registry.store.results import BaseModelRecord, BaseRelation

RELATIONS = ("quantized-from", "equivalent")

# A push looks its base up by name: statements built once (building them was a third of
# the lookup), typed by the table as ORM reads are.
_BASES = BaseModelRow.__table__  # type: ignore[attr-defined]
_BASES_NAMED = sql_select(_BASES).where(_BASES.c.name == bindparam("name")).order_by(_BASES.c.id)
_BASES_REVISION = _BASES_NAMED.where(_BASES.c.revision == bindparam("revision"))


class _PlainRow(NamedTuple):
    """A base row read by the driver itself, with the attributes ``_record`` reads."""

    id: int
    name: str
    revision: str
    version: str | None
    quantization: str
    details: str
    created_at: datetime


# The columns of ``_PlainRow``, in its order, for reads by the driver (``find_base``).
_PLAIN = "SELECT id, name, revision, version, quantization, details, created_at FROM base_models"
_PLAIN_NAMED = f"{_PLAIN} WHERE name = ? ORDER BY id"
_PLAIN_REVISION = f"{_PLAIN} WHERE name = ? AND revision = ? ORDER BY id"


def _record(row: BaseModelRow | Row[Any] | _PlainRow) -> BaseModelRecord:
    from registry.bases.fingerprint_json import fingerprint_from_json

    details = json.loads(row.details or "{}")
    fp_data = details.get("fingerprint")
    assert row.id is not None
    return BaseModelRecord(
        id=row.id,
        name=row.name,
        revision=row.revision or None,
        version=row.version,
        quantization=row.quantization,
        fingerprint=fingerprint_from_json(fp_data) if fp_data else None,
        config=dict(details.get("config") or {}),
        source=str(details.get("source", "")),
        created_at=row.created_at,
    )


def _event(session: Session, actor: str, action: str, details: dict[str, Any]) -> None:
    add_event(session, actor, action, None, None, details)


def _adds_digests(
    known: BaseModelRecord, fingerprint: Any, name: str, revision: str | None
) -> bool:
    """Whether ``fingerprint`` (same sampled content as ``known``) brings full-content digests
    the record lacks; refused when a digest disagrees: same samples, other weights."""
    stored = known.fingerprint.digests if known.fingerprint is not None else {}
    clashing = sorted(n for n, d in fingerprint.digests.items() if stored.get(n, d) != d)
    if clashing:
        label = f"{name}@{revision}" if revision else name
        raise ConflictError(
            f"base model {label} is recorded with other weights: the full contents of "
            f"{', '.join(clashing[:3])} differ although the samples agree; record these "
            "under another name or revision"
        )
    return bool(set(fingerprint.digests) - set(stored))


def record_base(
    catalog: Catalog,
    *,
    name: str,
    revision: str | None,
    version: str | None,
    quantization: str,
    fingerprint: Any | None,
    config: dict[str, Any],
    source: str,
    actor: str,
) -> tuple[BaseModelRecord, bool]:
    """Add a base model, or return the recorded one when it is the same weights.

    A record with the same name and revision but other weights is refused: the name
    would then mean two models.
    """
    from registry.bases.fingerprint_json import fingerprint_to_json

    content = None if fingerprint is None else fingerprint.content
    with write_session(catalog.engine) as session:
        row = session.exec(
            select(BaseModelRow).where(
                BaseModelRow.name == name, BaseModelRow.revision == (revision or "")
            )
        ).first()
        if row is not None:
            if content is None:
                return _record(row), False
            if row.fingerprint == content:
                known = _record(row)
                if not _adds_digests(known, fingerprint, name, revision):
                    return known, False
            elif row.fingerprint is not None:
                label = f"{name}@{revision}" if revision else name
                raise ConflictError(
                    f"base model {label} is recorded with other weights "
                    f"(content {row.fingerprint[:19]}..., these are {content[:19]}...); "
                    "record these under another name or revision"
                )
        details = {
            "fingerprint": None if fingerprint is None else fingerprint_to_json(fingerprint),
            "config": config,
            "source": source,
        }
        if row is None:
            row = BaseModelRow(
                name=name,
                revision=revision or "",
                version=version,
                quantization=quantization,
                created_at=utcnow(),
            )
        row.fingerprint = content
        row.structure_digest = None if fingerprint is None else fingerprint.structure
        row.details = json.dumps(details, sort_keys=True)
        row.quantization = quantization or row.quantization
        row.version = version or row.version
        session.add(row)
        session.flush()
        _event(session, actor, "base-add", {"name": name, "revision": revision, "content": content})
        return _record(row), True


def find_base(
    catalog: Catalog, name: str, revision: str | None = None, *, exact: bool = False
) -> BaseModelRecord | None:
    """The base recorded as NAME[@REVISION]; without a revision, the one recorded without
    one, else the newest (``exact``: only the one recorded without a revision)."""
    rows = _named_rows(catalog, name, revision or "" if revision or exact else None)
    chosen = chosen_base(rows, revision)
    return None if chosen is None else _record(chosen)


class _Revisioned(Protocol):
    @property
    def revision(self) -> str | None: ...


_R = TypeVar("_R", bound=_Revisioned)


def chosen_base(rows: Sequence[_R], revision: str | None) -> _R | None:
    """Of one name's base rows or records, oldest first, the one a lookup of ``revision``
    means: that revision's; with none asked, the one recorded without a revision, else
    the newest."""
    if revision:
        return next((r for r in rows if r.revision == revision), None)
    return next((r for r in rows if not r.revision), rows[-1] if rows else None)


def _named_rows(
    catalog: Catalog, name: str, revision: str | None
) -> Sequence[Row[Any] | _PlainRow]:
    """The base rows of ``name`` (of that ``revision`` unless None), oldest first. On SQLite
    read by the driver outside any session (a push looks its base up: a third of the
    lookup was the pool and the transaction); else Core rows, not ORM objects (half of
    the lookup's time was building them). ``_record`` reads both alike."""
    with wrap_operational(catalog.engine):
        if revision is None:
            plain = catalog.generation.read(_PLAIN_NAMED, (name,))
        else:
            plain = catalog.generation.read(_PLAIN_REVISION, (name, revision))
        if plain is not None:
            return [
                _PlainRow(r[0], r[1], r[2], r[3], r[4], r[5], utc_datetime(r[6]))
                for r in plain
            ]
        with catalog.engine.connect() as connection:
            if revision is None:
                return list(connection.execute(_BASES_NAMED, {"name": name}))
            params = {"name": name, "revision": revision}
            return list(connection.execute(_BASES_REVISION, params))


def get_base(catalog: Catalog, ref: str) -> BaseModelRecord:
    name, _, revision = ref.partition("@")
    found = find_base(catalog, name, revision or None)
    if found is None:
        raise NotFoundError(f"no base model {ref!r} is recorded; add it with `adapters base add`")
    return found


def find_by_content(catalog: Catalog, content: str) -> list[BaseModelRecord]:
    with read_session(catalog.engine) as session:
        rows = session.exec(select(BaseModelRow).where(BaseModelRow.fingerprint == content))
        return [_record(r) for r in rows]


def list_bases(catalog: Catalog) -> list[BaseModelRecord]:
    with read_session(catalog.engine) as session:
        rows = session.exec(
            select(BaseModelRow).order_by(col(BaseModelRow.name), col(BaseModelRow.revision))
        )
        return [_record(r) for r in rows]


def link_bases(
    catalog: Catalog, source: BaseModelRecord, target: BaseModelRecord, relation: str, actor: str
) -> BaseRelation:
    if relation not in RELATIONS:
        raise ArgumentError(f"unknown relation {relation!r}; use one of {', '.join(RELATIONS)}")
    if source.id == target.id:
        raise ArgumentError(f"cannot relate {source.ref} to itself")
    with write_session(catalog.engine) as session:
        existing = session.get(BaseRelationRow, (source.id, target.id))
        if existing is None:
            session.add(
                BaseRelationRow(
                    from_id=source.id,
                    to_id=target.id,
                    relation=relation,
                    created_at=utcnow(),
                    created_by=actor,
                )
            )
        else:
            existing.relation = relation
            session.add(existing)
        _event(
            session,
            actor,
            "base-link",
            {"from": source.ref, "to": target.ref, "relation": relation},
        )
    return BaseRelation(source.ref, relation, target.ref)


def relations(catalog: Catalog) -> list[BaseRelation]:
    with read_session(catalog.engine) as session:
        names = {
            row.id: (f"{row.name}@{row.revision}" if row.revision else row.name)
            for row in session.exec(select(BaseModelRow))
        }
        return [
            BaseRelation(names[r.from_id], r.relation, names[r.to_id])
            for r in session.exec(select(BaseRelationRow))
        ]


def related_contents(catalog: Catalog, content: str) -> dict[str, str]:
    """Content digests related to ``content`` by a recorded relation, either direction."""
    with read_session(catalog.engine) as session:
        ids = [
            r.id
            for r in session.exec(select(BaseModelRow).where(BaseModelRow.fingerprint == content))
        ]
        if not ids:
            return {}
        rels = session.exec(
            select(BaseRelationRow).where(
                or_(col(BaseRelationRow.from_id).in_(ids), col(BaseRelationRow.to_id).in_(ids))
            )
        ).all()
        found: dict[str, str] = {}
        for rel in rels:
            other_id = rel.to_id if rel.from_id in ids else rel.from_id
            other = session.get(BaseModelRow, other_id)
            if other is not None and other.fingerprint:
                found[other.fingerprint] = rel.relation
        return found
