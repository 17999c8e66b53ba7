"""Typed results about base models: their records and recorded relations."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from registry.store.results import iso_utc


@dataclass(frozen=True)
class BaseModelRecord:
    """A base model as the catalog knows it, with its fingerprint when one was taken."""

    id: int
    name: str
    revision: str | None
    version: str | None
    quantization: str
    fingerprint: Any | None  # bases.fingerprint.Fingerprint (typed loosely: no import cycle)
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
            },
            "source": self.source,
            "created_at": iso_utc(self.created_at),
        }


@dataclass(frozen=True)
class BaseRelation:
    source: str  # base ref
    relation: str  # "quantized-from" | "equivalent"
    target: str
