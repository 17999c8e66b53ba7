"""Typed results of lifecycle changes and queries: evals, gates, aliases, status, audit,
lineage and comparisons."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry.check import Check
from registry.store.results import EvalScore, iso_utc


def _score_dict(score: EvalScore) -> dict[str, Any]:
    return {**vars(score), "recorded_at": iso_utc(score.recorded_at)}


@dataclass(frozen=True)
class EvalRecord:
    """Eval scores just appended to a version."""

    ref: str
    digest: str
    scores: tuple[EvalScore, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "scores": [_score_dict(s) for s in self.scores],
        }


@dataclass(frozen=True)
class GateReport:
    """Every promotion requirement checked for one version and alias."""

    ref: str
    alias: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    @property
    def unmet(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.status == "fail")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "alias": self.alias,
            "ok": self.ok,
            "checks": [vars(check).copy() for check in self.checks],
        }


@dataclass(frozen=True)
class AliasChange:
    """One alias move: a result of ``set_alias``/``remove_alias``, or a history entry."""

    name: str
    alias: str
    action: str  # "set" | "push" | "rm" | "rm-version"
    version: str | None  # the new target; None when the alias was removed
    digest: str | None
    previous: str | None
    at: datetime
    actor: str
    note: str = ""
    changed: bool = True  # False: the alias already pointed there
    gates: tuple[Check, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "action": self.action,
            "version": self.version,
            "digest": self.digest,
            "previous": self.previous,
            "at": iso_utc(self.at),
            "actor": self.actor,
            "note": self.note,
            "changed": self.changed,
            "gates": [vars(check).copy() for check in self.gates],
        }


@dataclass(frozen=True)
class StatusChange:
    """The result of yank/unyank."""

    ref: str
    digest: str
    status: str
    reason: str | None
    previous_status: str
    previous_reason: str | None
    aliases: tuple[str, ...]  # aliases still pointing at the version

    @property
    def changed(self) -> bool:
        return (self.status, self.reason) != (self.previous_status, self.previous_reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "status": self.status,
            "reason": self.reason,
            "previous_status": self.previous_status,
            "previous_reason": self.previous_reason,
            "changed": self.changed,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class Removal:
    """A removed version; its blobs stay until ``gc``."""

    ref: str
    digest: str
    aliases_removed: tuple[str, ...]
    unreferenced_bytes: int  # what a gc would now free (blobs no other version uses)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "aliases_removed": list(self.aliases_removed),
            "unreferenced_bytes": self.unreferenced_bytes,
        }


@dataclass(frozen=True)
class AuditEvent:
    id: int
    at: datetime
    actor: str
    action: str
    name: str | None
    version: str | None
    details: dict[str, Any]

    @property
    def ref(self) -> str | None:
        if self.name is None:
            return None
        return f"{self.name}@{self.version}" if self.version else self.name

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": iso_utc(self.at),
            "actor": self.actor,
            "action": self.action,
            "name": self.name,
            "version": self.version,
            "details": self.details,
        }


@dataclass(frozen=True)
class LogPage:
    """A page of the audit log, newest first; ``more``: older events follow."""

    events: tuple[AuditEvent, ...]
    more: bool


@dataclass(frozen=True)
class LineageNode:
    """A version related to the one asked about, with its own further relatives.

    In the ancestors tree ``operation``/``weight`` say how the child below was made
    from this node; in the descendants tree, how this node was made.
    """

    name: str
    version: str
    digest: str
    present: bool  # False: named in a manifest but no longer (or never) in the catalog
    status: str | None
    operation: str
    weight: float | None
    links: tuple[LineageNode, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "present": self.present,
            "status": self.status,
            "operation": self.operation,
            "weight": self.weight,
            "links": [link.to_dict() for link in self.links],
        }


@dataclass(frozen=True)
class LineageReport:
    ref: str
    digest: str
    operation: str | None  # how this version was made, if it was derived
    ancestors: tuple[LineageNode, ...]
    descendants: tuple[LineageNode, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "operation": self.operation,
            "ancestors": [n.to_dict() for n in self.ancestors],
            "descendants": [n.to_dict() for n in self.descendants],
        }


@dataclass(frozen=True)
class EvalDiff:
    metric: str
    dataset: str
    split: str
    a: float | None
    b: float | None

    @property
    def delta(self) -> float | None:
        return None if self.a is None or self.b is None else self.b - self.a


@dataclass(frozen=True)
class FieldDiff:
    field: str  # dotted path, e.g. "config.r", "base_model.name"
    a: Any
    b: Any


@dataclass(frozen=True)
class ModuleSimilarity:
    module: str
    cosine: float | None  # None when either delta is zero
    norm_a: float
    norm_b: float
    shape: tuple[int, int]


@dataclass(frozen=True)
class Comparison:
    a: str
    b: str
    digest_a: str
    digest_b: str
    evals: tuple[EvalDiff, ...]
    fields: tuple[FieldDiff, ...]
    similarity: tuple[ModuleSimilarity, ...]
    similarity_note: str | None  # why similarity is missing or partial
    unmatched_modules: tuple[str, ...]  # in only one adapter, or of different shapes

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "digest_a": self.digest_a,
            "digest_b": self.digest_b,
            "evals": [{**vars(e), "delta": e.delta} for e in self.evals],
            "fields": [vars(f).copy() for f in self.fields],
            "similarity": [{**vars(s), "shape": list(s.shape)} for s in self.similarity],
            "similarity_note": self.similarity_note,
            "unmatched_modules": list(self.unmatched_modules),
        }


@dataclass(frozen=True)
class TagChange:
    """A version's tags before and after ``set_tags``."""

    ref: str
    digest: str
    tags: dict[str, str]
    previous: dict[str, str]

    @property
    def changed(self) -> bool:
        return self.tags != self.previous

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "tags": dict(self.tags),
            "previous": dict(self.previous),
            "changed": self.changed,
        }


@dataclass(frozen=True)
class DescriptionChange:
    """A version's description before and after ``describe`` (None: none)."""

    ref: str
    digest: str
    description: str | None
    previous: str | None

    @property
    def changed(self) -> bool:
        return self.description != self.previous

    def to_dict(self) -> dict[str, Any]:
        return {**vars(self), "changed": self.changed}
