"""Yank and unyank (PEP 592) and removal of exact versions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from registry.errors import ArgumentError
from registry.lifecycle import transactions as q
from registry.lifecycle.results import (
    Removal,
    StatusChange,
)
from registry.store.actor import current_actor
from registry.store.catalog.catalog import Catalog
from registry.store.refs import Ref

if TYPE_CHECKING:
    pass
from registry.lifecycle.selection import checked_text, exact_ref, row_id


def _set_status(
    catalog: Catalog, ref: str | Ref, status: str, reason: str | None, verb: str
) -> StatusChange:
    version = catalog.resolve(exact_ref(ref, verb))
    before = q.set_status(
        catalog.engine, row_id(catalog, version), status, reason, current_actor()
    )
    return StatusChange(
        ref=version.ref,
        digest=version.digest,
        status=status,
        reason=reason,
        previous_status=before.previous_status,
        previous_reason=before.previous_reason,
        aliases=before.aliases,
    )


def yank(catalog: Catalog, ref: str | Ref, reason: str) -> StatusChange:
    """Mark a version yanked (PEP 592): specifiers and bare names skip it; exact pins
    still resolve, with a ``YankedVersionWarning``. Yanking again updates the reason."""
    reason = checked_text(reason, "reason")
    if not reason:
        raise ArgumentError("a yank needs a reason, e.g. --reason 'trained on leaked data'")
    return _set_status(catalog, ref, "yanked", reason, "yank")


def unyank(catalog: Catalog, ref: str | Ref) -> StatusChange:
    return _set_status(catalog, ref, "active", None, "unyank")


def remove(catalog: Catalog, ref: str | Ref, *, force: bool = False, reason: str = "") -> Removal:
    """Delete a version's catalog rows (its blobs stay until ``gc``).

    Refused while an alias points at it, unless ``force`` removes those aliases too.
    """
    reason = checked_text(reason, "reason")
    version = catalog.resolve(exact_ref(ref, "rm"))
    aliases, freed = q.delete_version(
        catalog.engine, row_id(catalog, version), force=force, reason=reason, actor=current_actor()
    )
    return Removal(
        ref=version.ref, digest=version.digest, aliases_removed=aliases, unreferenced_bytes=freed
    )
