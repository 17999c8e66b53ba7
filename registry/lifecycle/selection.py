"""Selecting the version a lifecycle change applies to, and checking free text.

Shared by evals, aliases, status changes and the audit log."""

from __future__ import annotations

from registry.errors import ArgumentError, InvalidNameError, NotFoundError
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.engine import read_session
from registry.store.catalog.lineage_edges import find_version_id
from registry.store.refs import Ref, parse_ref
from registry.store.results import AdapterVersion

REASON_MAX = 1000


def as_ref(ref: str | Ref) -> Ref:
    return parse_ref(ref) if isinstance(ref, str) else ref


def exact_ref(ref: str | Ref, verb: str) -> Ref:
    parsed = as_ref(ref)
    if parsed.kind not in ("version", "digest"):
        raise InvalidNameError(
            f"{verb} needs an exact version: {parsed.name}@VERSION or "
            f"{parsed.name}@sha256:DIGEST, not {str(parsed)!r}"
        )
    return parsed


def row_id(catalog: Catalog, version: AdapterVersion) -> int:
    with read_session(catalog.engine) as session:
        found = find_version_id(session, version.name, version.digest)
    if found is None:
        raise NotFoundError(f"{version.ref} was removed meanwhile")
    return found


def checked_text(value: str, what: str, limit: int = REASON_MAX) -> str:
    value = value.strip()
    if len(value) > limit:
        raise ArgumentError(f"the {what} is {len(value)} characters long; at most {limit}")
    if any(not c.isprintable() for c in value):
        raise ArgumentError(f"the {what} may not contain control characters")
    return value
