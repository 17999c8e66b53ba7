"""Catalog queries for version signatures (the ``signatures`` table).

A signature is recorded with its ``sign`` audit event in one transaction. Versions are
found by (name, digest), which is what the signed statement names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlmodel import col, select

from registry.errors import ConflictError, NotFoundError
from registry.store.catalog.engine import read_session, write_session
from registry.store.catalog.history import add_event
from registry.store.catalog.lineage_edges import find_version_id
from registry.store.catalog.tables import AdapterVersionRow, SignatureRow


@dataclass(frozen=True)
class StoredSignature:
    key_id: str
    public_key: str  # base64 of the raw public key
    signer: str
    signature: str  # base64
    statement: str
    created_at: datetime
    created_by: str


def _stored(row: SignatureRow) -> StoredSignature:
    return StoredSignature(
        row.key_id,
        row.public_key,
        row.signer,
        row.signature,
        row.statement,
        row.created_at,
        row.created_by,
    )


def add_signature(
    engine: Engine,
    name: str,
    digest: str,
    new: StoredSignature,
) -> tuple[StoredSignature, bool]:
    """Record ``new`` for version (``name``, ``digest``); (the stored one, whether it is new).

    Signing again with the same key is a no-op that returns the earlier signature.
    """
    for _attempt in range(3):
        try:
            with write_session(engine) as session:
                version_id = find_version_id(session, name, digest)
                if version_id is None:
                    raise NotFoundError(f"{name} has no version with digest {digest}")
                existing = session.exec(
                    select(SignatureRow).where(
                        SignatureRow.version_id == version_id, SignatureRow.key_id == new.key_id
                    )
                ).first()
                if existing is not None:
                    return _stored(existing), False
                row = session.get(AdapterVersionRow, version_id)
                assert row is not None
                session.add(
                    SignatureRow(
                        version_id=version_id,
                        key_id=new.key_id,
                        public_key=new.public_key,
                        signer=new.signer,
                        signature=new.signature,
                        statement=new.statement,
                        created_at=new.created_at,
                        created_by=new.created_by,
                    )
                )
                add_event(
                    session,
                    new.created_by,
                    "sign",
                    name,
                    row.version,
                    {"digest": digest, "key_id": new.key_id, "signer": new.signer},
                )
                return new, True
        except SqlIntegrityError:
            continue  # a concurrent signer with the same key won; read theirs
    raise ConflictError(f"the signature of {name} could not be recorded; try again")


def signatures_of(engine: Engine, name: str, digest: str) -> list[StoredSignature]:
    """The signatures recorded for version (``name``, ``digest``), oldest first."""
    with read_session(engine) as session:
        version_id = find_version_id(session, name, digest)
        if version_id is None:
            return []
        rows = session.exec(
            select(SignatureRow)
            .where(SignatureRow.version_id == version_id)
            .order_by(col(SignatureRow.id))
        )
        return [_stored(row) for row in rows]
