"""Evals, tags, descriptions, aliases behind gates, yank, removal, the audit log, lineage
and comparisons: the ``Registry`` methods for annotations on immutable versions."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from registry.lifecycle import aliases, annotate, audit, evals, status
from registry.lifecycle.policy import parse_requirement
from registry.lifecycle.results import (
    AliasChange,
    AuditEvent,
    Comparison,
    DescriptionChange,
    EvalRecord,
    GateReport,
    LineageReport,
    LogPage,
    Removal,
    StatusChange,
    TagChange,
)
from registry.store.refs import Ref

if TYPE_CHECKING:
    pass
from registry.facade.core import FacadeCore


class LifecycleMethods(FacadeCore):
    """Evals, tags, descriptions, aliases behind gates, yank, removal, the audit log,
    lineage and comparisons: annotations on immutable versions."""

    def record_eval(
        self,
        ref: str | Ref,
        scores: Mapping[str, float],
        *,
        dataset: str = "",
        split: str = "",
        notes: str = "",
    ) -> EvalRecord:
        """Append eval scores to a version (earlier records are kept, never overwritten)."""
        return evals.record_eval(
            self.catalog, ref, scores, dataset=dataset, split=split, notes=notes
        )

    def set_tags(
        self,
        ref: str | Ref,
        tags: Mapping[str, str] | None = None,
        *,
        remove: Sequence[str] = (),
    ) -> TagChange:
        """Set tags (new keys added, existing values replaced) and remove the keys in
        ``remove`` on the version ``ref`` resolves to; audited, all or nothing."""
        return annotate.set_tags(self.catalog, ref, tags, remove=remove)

    def describe(self, ref: str | Ref, text: str) -> DescriptionChange:
        """Set the description of the version ``ref`` resolves to ("" clears it); audited."""
        return annotate.describe(self.catalog, ref, text)

    def set_alias(
        self, ref: str | Ref, alias: str, *, requires: Sequence[str] = (), note: str = ""
    ) -> AliasChange:
        """Move ``alias`` to ``ref`` atomically, once the policy's gates and ``requires``
        (``"accuracy@gsm8k>=0.93"``, ``"verify"``, ``"base-fingerprint"``) are met.

        Raises ``GateError`` naming every unmet requirement.
        """
        return aliases.set_alias(
            self.store,
            ref,
            alias,
            requires=[parse_requirement(r) for r in requires],
            note=note,
        )

    def check_alias(
        self, ref: str | Ref, alias: str, *, requires: Sequence[str] = ()
    ) -> GateReport:
        """The gates ``set_alias`` would check, evaluated without moving the alias."""
        return aliases.check_alias(
            self.store,
            ref,
            alias,
            [parse_requirement(r) for r in requires],
        )

    def remove_alias(self, name: str, alias: str, *, note: str = "") -> AliasChange:
        return aliases.remove_alias(self.catalog, name, alias, note=note)

    def alias_history(self, name: str, alias: str | None = None) -> builtins.list[AliasChange]:
        """Every move of the aliases of ``name`` (or of one alias), oldest first."""
        return aliases.alias_history(self.catalog, name, alias)

    def yank(self, ref: str | Ref, reason: str) -> StatusChange:
        """Yank an exact version (PEP 592): skipped by bare names and specifiers."""
        return status.yank(self.catalog, ref, reason)

    def unyank(self, ref: str | Ref) -> StatusChange:
        return status.unyank(self.catalog, ref)

    def remove(self, ref: str | Ref, *, force: bool = False, reason: str = "") -> Removal:
        """Delete an exact version from the catalog; refused while an alias points at it
        unless ``force``. Its blobs are freed by ``gc``."""
        return status.remove(self.catalog, ref, force=force, reason=reason)

    def log(
        self,
        ref: str | Ref | None = None,
        *,
        actions: Sequence[str] = (),
        actor: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]:
        """Audit events, oldest first (``limit``: the newest ``limit`` of them)."""
        return audit.audit_log(self.catalog, ref, actions=actions, actor=actor, limit=limit)

    def log_page(
        self,
        ref: str | Ref | None = None,
        *,
        actions: Sequence[str] = (),
        actor: str | None = None,
        namespace: str | None = None,
        before: int | None = None,
        size: int = 100,
    ) -> LogPage:
        """Audit events newest first, a page at a time: at most ``size`` older than the
        event id ``before`` (the last one of the previous page); ``namespace`` keeps the
        events of names under ``namespace/``."""
        return audit.audit_page(self.catalog, ref, actions=actions, actor=actor,
                                namespace=namespace, before=before, size=size)  # fmt: skip

    def record_event(
        self,
        action: str,
        name: str | None = None,
        version: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an audit event for a change made outside the catalog (e.g. hub sync)."""
        from registry.lifecycle.transactions import record_event
        from registry.store.actor import current_actor

        record_event(
            self.catalog.engine, current_actor(), action, name, version, dict(details or {})
        )

    def lineage(self, ref: str | Ref, *, depth: int = 64) -> LineageReport:
        """Ancestors and descendants of a version through combine/merge/extract lineage."""
        from registry.lifecycle.lineage import lineage

        return lineage(self.catalog, self.get(ref), depth=depth)

    def compare(self, a: str | Ref, b: str | Ref) -> Comparison:
        """Evals side by side, manifest and config differences and, for two LoRA
        adapters, the cosine similarity of their weight updates per module."""
        from registry.lifecycle.compare import compare_versions

        return compare_versions(self.get(a), self.get(b), self.blobs)
