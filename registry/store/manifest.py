"""The immutable manifest of an adapter version and its digest.

The digest is ``sha256:`` over the canonical JSON of the manifest: keys sorted,
no insignificant whitespace, UTF-8, no NaN. It covers what the adapter *is*
(method, config, files and their hashes, base model, training data, lineage);
what is said *about* it later (evals, aliases, tags, status) lives in the catalog
and never changes the digest.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from registry.errors import IntegrityError
from registry.formats.peft_types import ANALYSIS_LEVELS, DEFAULT_ANALYSIS

MANIFEST_FORMAT = "adapter-registry/manifest-1"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a manifest")


def canonical_json(value: Any) -> bytes:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


@dataclass(frozen=True)
class FileEntry:
    path: str
    sha256: str
    size: int
    role: str  # "config" | "weights" | "card" | "extra"


@dataclass(frozen=True)
class BaseModelRef:
    name: str | None
    revision: str | None = None
    fingerprint: str | None = None  # afp content digest, when the base weights were seen


@dataclass(frozen=True)
class TrainingDataRef:
    sha256: str
    kind: str  # "file" | "directory" | "given"


@dataclass(frozen=True)
class ParentRef:
    name: str
    version: str
    digest: str
    weight: float | None = None


@dataclass(frozen=True)
class Lineage:
    operation: str
    parents: tuple[ParentRef, ...]
    parameters: dict[str, Any] = field(default_factory=dict)
    tool_version: str = ""


def digest_of(canonical: bytes) -> str:
    """A manifest's digest from its ``canonical_bytes()`` (when they are needed anyway)."""
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


@dataclass(frozen=True)
class Manifest:
    method: str
    source_format: str
    config: dict[str, Any]
    files: tuple[FileEntry, ...]
    base_model: BaseModelRef
    training_data: tuple[TrainingDataRef, ...] = ()
    lineage: Lineage | None = None
    requires: dict[str, str] = field(default_factory=dict)  # package -> PEP 440 specifier
    # Manifests of the first release have no "requires" key; leaving it out when it was
    # absent keeps their digests reproducible.
    requires_key: bool = field(default=True, compare=False, repr=False)
    # How deeply the adapter was checked at push (formats/peft_types.py). "full" is written as
    # no key at all, so every manifest recorded before the field existed keeps its digest.
    analysis: str = DEFAULT_ANALYSIS

    def to_dict(self) -> dict[str, Any]:
        lineage = None
        if self.lineage is not None:
            lineage = {
                "operation": self.lineage.operation,
                "parents": [vars(p).copy() for p in self.lineage.parents],
                "parameters": self.lineage.parameters,
                "tool_version": self.lineage.tool_version,
            }
        data = {
            "format": MANIFEST_FORMAT,
            "method": self.method,
            "source_format": self.source_format,
            "config": self.config,
            "files": [vars(f).copy() for f in sorted(self.files, key=lambda f: f.path)],
            "base_model": vars(self.base_model).copy(),
            "training_data": [
                vars(t).copy() for t in sorted(self.training_data, key=lambda t: (t.sha256, t.kind))
            ],
            "lineage": lineage,
            "requires": dict(sorted(self.requires.items())),
        }
        if not self.requires and not self.requires_key:
            del data["requires"]
        if self.analysis != DEFAULT_ANALYSIS:
            data["analysis"] = self.analysis
        return data

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.to_dict())

    @property
    def digest(self) -> str:
        return digest_of(self.canonical_bytes())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        """The manifest in ``data``; ``IntegrityError`` for anything that is not one.

        Manifests also arrive from outside (a Hub repo), so a malformed one is an error
        with a sentence, never a ``KeyError`` from deep inside.
        """
        if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT:
            shown = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise IntegrityError(f"unknown manifest format {shown!r}")
        try:
            return cls._from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise IntegrityError(f"malformed manifest: {type(exc).__name__}: {exc}") from None

    @classmethod
    def _from_dict(cls, data: dict[str, Any]) -> Manifest:
        for key, kind in (("config", dict), ("files", list), ("training_data", list)):
            if not isinstance(data[key], kind):
                raise TypeError(f"{key} is a {type(data[key]).__name__}, not a {kind.__name__}")
        analysis = data.get("analysis", DEFAULT_ANALYSIS)
        if analysis not in ANALYSIS_LEVELS or ("analysis" in data and analysis == DEFAULT_ANALYSIS):
            # "full" is never written (see to_dict): a manifest that spells it out would not
            # hash back to its own digest.
            raise ValueError(f"analysis {analysis!r} is not one of structural, opaque")
        lineage_data = data.get("lineage")
        lineage = None
        if lineage_data is not None:
            lineage = Lineage(
                operation=lineage_data["operation"],
                parents=tuple(ParentRef(**p) for p in lineage_data["parents"]),
                parameters=dict(lineage_data.get("parameters") or {}),
                tool_version=lineage_data.get("tool_version", ""),
            )
        return cls(
            method=data["method"],
            source_format=data["source_format"],
            config=dict(data["config"]),
            files=tuple(FileEntry(**f) for f in data["files"]),
            base_model=BaseModelRef(**data["base_model"]),
            training_data=tuple(TrainingDataRef(**t) for t in data["training_data"]),
            lineage=lineage,
            requires=dict(data.get("requires") or {}),
            requires_key="requires" in data,
            analysis=analysis,
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise IntegrityError(f"the manifest is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise KeyError(path)
