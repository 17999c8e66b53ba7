"""Which keys this registry trusts, as recorded in its catalog.

A public key file in ``keys/trusted/`` is only a candidate: it counts once an audit event
``key-trust`` (written by ``adapters key trust`` or ``adapters key generate``) records its
key id under its name. The audit log is append-only (database triggers), so trusting a key
leaves a trace naming who did it, and a file dropped into the folder, or a trusted file
replaced by another key, is not trusted. ``key-untrust`` (``adapters key untrust``) ends a
key's trust the same way, with a trace.
"""

from __future__ import annotations

import json

from sqlmodel import col, select

from registry.store.catalog.catalog import Catalog
from registry.store.catalog.engine import read_session, write_session
from registry.store.catalog.history import add_event
from registry.store.catalog.tables import AuditEventRow

TRUST_ACTION = "key-trust"
UNTRUST_ACTION = "key-untrust"


def record_trust(catalog: Catalog, actor: str, name: str, key_id: str) -> None:
    with write_session(catalog.engine) as session:
        add_event(session, actor, TRUST_ACTION, None, None, {"key": name, "key_id": key_id})


def record_untrust(catalog: Catalog, actor: str, name: str, key_id: str) -> None:
    with write_session(catalog.engine) as session:
        add_event(session, actor, UNTRUST_ACTION, None, None, {"key": name, "key_id": key_id})


def recorded_trust(catalog: Catalog) -> dict[str, str]:
    """key id -> the name it was trusted under (the latest record wins; an untrust record
    ends the trust until the key is trusted again)."""
    with read_session(catalog.engine) as session:
        rows = session.exec(
            select(AuditEventRow.action, AuditEventRow.details)
            .where(col(AuditEventRow.action).in_([TRUST_ACTION, UNTRUST_ACTION]))
            .order_by(col(AuditEventRow.id))
        ).all()
    found: dict[str, str] = {}
    for action, details in rows:
        try:
            parsed = json.loads(details)
            ident = str(parsed["key_id"])
            if action == UNTRUST_ACTION:
                found.pop(ident, None)
            else:
                found[ident] = str(parsed["key"])
        except (ValueError, KeyError, TypeError):
            continue
    return found
