"""Typed results of storing, finding, verifying and exporting versions (frozen, no torch)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.check import Check
from registry.store.manifest import BaseModelRef, FileEntry, Manifest

if TYPE_CHECKING:
    from registry.bases.fingerprint import Fingerprint



@dataclass(frozen=True)
class EvalScore:
    metric: str
    value: float
    dataset: str
    split: str
    notes: str
    recorded_at: datetime
    actor: str


@dataclass(frozen=True)
class TrainingDataInfo:
    sha256: str
    kind: str
    source: str
    files: int
    size: int


@dataclass(frozen=True)
class AdapterVersion:
    """One stored adapter version with its current annotations."""

    name: str
    version: str
    digest: str
    manifest: Manifest
    size_bytes: int
    status: str
    status_reason: str | None
    created_at: datetime
    created_by: str
    training_data: tuple[TrainingDataInfo, ...] = ()
    evals: tuple[EvalScore, ...] = ()
    aliases: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def method(self) -> str:
        return self.manifest.method

    @property
    def base_model(self) -> BaseModelRef:
        return self.manifest.base_model

    @property
    def base_verified(self) -> bool:
        """Whether the base trained on was fingerprinted at push (false: "unverified")."""
        return self.manifest.base_model.fingerprint is not None

    @property
    def files(self) -> tuple[FileEntry, ...]:
        return self.manifest.files

    @property
    def yanked(self) -> bool:
        return self.status == "yanked"

    def latest_evals(self) -> tuple[EvalScore, ...]:
        """The most recent score per (metric, dataset, split)."""
        latest: dict[tuple[str, str, str], EvalScore] = {}
        for score in sorted(self.evals, key=lambda s: s.recorded_at):
            latest[(score.metric, score.dataset, score.split)] = score
        return tuple(latest.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "digest": self.digest,
            "method": self.method,
            "analysis": self.manifest.analysis,
            "base_model": vars(self.base_model).copy(),
            "base_verified": self.base_verified,
            "size_bytes": self.size_bytes,
            "status": self.status,
            "status_reason": self.status_reason,
            "created_at": iso_utc(self.created_at),
            "created_by": self.created_by,
            "aliases": list(self.aliases),
            "tags": dict(self.tags),
            "description": self.description,
            "evals": [
                {**vars(s), "recorded_at": iso_utc(s.recorded_at)} for s in self.latest_evals()
            ],
            "eval_history": [
                {**vars(s), "recorded_at": iso_utc(s.recorded_at)} for s in self.evals
            ],
            "training_data": [vars(t).copy() for t in self.training_data],
            "manifest": self.manifest.to_dict(),
        }


@dataclass(frozen=True)
class PushResult:
    version: AdapterVersion
    created: bool  # False: identical content was already stored under this name
    skipped: tuple[str, ...] = ()
    blobs_written: int = 0
    bytes_written: int = 0
    # On a push of content already stored (created False), the annotations applied to it:
    applied_alias: str | None = None
    applied_evals: int = 0
    applied_tags: tuple[str, ...] = ()

    @property
    def applied(self) -> str:
        """"alias prod, 2 evals, 1 tag" ("" when nothing was applied)."""
        parts = [f"alias {self.applied_alias}"] if self.applied_alias else []
        if self.applied_evals:
            parts.append(_count(self.applied_evals, "eval"))
        if self.applied_tags:
            parts.append(_count(len(self.applied_tags), "tag"))
        return ", ".join(parts)
    # Why the base has no fingerprint (no weights found), or None: the base is verified.
    base_unverified: str | None = None
    blobs_repaired: int = 0  # stored blobs found corrupt and rewritten from the source

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.version.ref,
            "digest": self.version.digest,
            "created": self.created,
            "applied": {
                "alias": self.applied_alias,
                "evals": self.applied_evals,
                "tags": list(self.applied_tags),
            },
            "skipped": list(self.skipped),
            "blobs_written": self.blobs_written,
            "bytes_written": self.bytes_written,
            "base_unverified": self.base_unverified,
            "blobs_repaired": self.blobs_repaired,
            "version": self.version.to_dict(),
        }


@dataclass(frozen=True)
class AdapterPushOutcome:
    """One adapter of a multi-adapter directory: pushed (``result``) or refused (``error``)."""

    subfolder: str  # "" for the default adapter at the top of the directory
    name: str
    result: PushResult | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "subfolder": self.subfolder,
            "name": self.name,
            "error": self.error,
            "result": self.result.to_dict() if self.result is not None else None,
        }


@dataclass(frozen=True)
class MultiPushResult:
    """Every adapter of a directory, each stored on its own (one failing stops no other)."""

    directory: Path
    adapters: tuple[AdapterPushOutcome, ...]

    @property
    def ok(self) -> bool:
        return all(a.error is None for a in self.adapters)

    @property
    def summary(self) -> str:
        """ "3 adapters: 2 stored, 1 already stored, 0 refused"."""
        stored = sum(1 for a in self.adapters if a.result is not None and a.result.created)
        known = sum(1 for a in self.adapters if a.result is not None and not a.result.created)
        refused = sum(1 for a in self.adapters if a.error is not None)
        return (
            f"{_count(len(self.adapters), 'adapter')}: {stored} stored, {known} already "
            f"stored, {refused} refused"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "directory": str(self.directory),
            "ok": self.ok,
            "summary": self.summary,
            "adapters": [a.to_dict() for a in self.adapters],
        }


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class VerifyReport:
    ref: str
    digest: str
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(check.status != "fail" for check in self.checks)

    @property
    def failures(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.status == "fail")

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "ok": self.ok,
            "checks": [vars(check).copy() for check in self.checks],
        }


@dataclass(frozen=True)
class ExportResult:
    ref: str
    digest: str
    directory: Path
    files: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "directory": str(self.directory),
            "files": list(self.files),
        }


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z; naive values (older drivers) are taken as UTC."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class GcBlob:
    sha256: str
    size: int


@dataclass(frozen=True)
class GcFile:
    path: str
    size: int


@dataclass(frozen=True)
class GcResult:
    dry_run: bool
    blobs: tuple[GcBlob, ...]  # deleted (or, with dry_run, that would be)
    temp_files: tuple[GcFile, ...]  # abandoned temp files and staging directories
    kept: int  # blobs kept: referenced by a version or leased by a push
    leased: int  # live leases of pushes in progress
    uploads: int = 0  # incomplete uploads aborted or removed (object storage)

    @property
    def bytes(self) -> int:
        return sum(b.size for b in self.blobs) + sum(f.size for f in self.temp_files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "blobs": [vars(b).copy() for b in self.blobs],
            "temp_files": [vars(f).copy() for f in self.temp_files],
            "kept": self.kept,
            "leased": self.leased,
            "uploads": self.uploads,
            "bytes": self.bytes,
        }


@dataclass(frozen=True)
class BaseModelRecord:
    """A base model as the catalog knows it, with its fingerprint when one was taken."""

    id: int
    name: str
    revision: str | None
    version: str | None
    quantization: str
    fingerprint: Fingerprint | None
    config: dict[str, Any]
    source: str
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.revision}" if self.revision else self.name

    @property
    def content_digest(self) -> str | None:
        return None if self.fingerprint is None else str(self.fingerprint.content)

    def to_dict(self) -> dict[str, Any]:
        fp = self.fingerprint
        return {
            "name": self.name,
            "revision": self.revision,
            "version": self.version,
            "quantization": self.quantization,
            "fingerprint": None
            if fp is None
            else {
                "algorithm": fp.algorithm,
                "structure": fp.structure,
                "content": fp.content,
                "tensor_count": fp.tensor_count,
                "total_params": fp.total_params,
                "exhaustive": fp.is_exhaustive,  # full-content digest of every tensor
            },
            "source": self.source,
            "created_at": iso_utc(self.created_at),
        }


@dataclass(frozen=True)
class BaseRelation:
    source: str  # base ref
    relation: str  # "quantized-from" | "equivalent"
    target: str
