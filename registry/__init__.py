"""adapter-registry: the registry and lifecycle tool for PEFT adapters.

    from registry import Registry
    reg = Registry.open()
    result = reg.push("out/my-lora", evals={"accuracy": 0.93})
    reg.export(result.version.ref, "serve/my-lora")

Importing this package does not import torch; only reading tensors does.
"""

from __future__ import annotations

from registry.api import Registry
from registry.errors import (
    ArgumentError,
    CatalogError,
    ConflictError,
    ExportError,
    FormatError,
    GateError,
    HomeError,
    IntegrityError,
    InvalidNameError,
    NotFoundError,
    RegistryError,
    UnsafeFormatError,
    ValidationError,
    YankedVersionWarning,
)
from registry.release import __version__
from registry.results import (
    AdapterVersion,
    AliasChange,
    AuditEvent,
    Check,
    Comparison,
    EvalRecord,
    EvalScore,
    ExportResult,
    GateReport,
    GcResult,
    LineageReport,
    PushResult,
    Removal,
    StatusChange,
    VerifyReport,
)
from registry.store.list_query import ListQuery

__all__ = [
    "AdapterVersion",
    "AliasChange",
    "ArgumentError",
    "AuditEvent",
    "CatalogError",
    "Check",
    "Comparison",
    "ConflictError",
    "EvalRecord",
    "EvalScore",
    "ExportError",
    "ExportResult",
    "FormatError",
    "GateError",
    "GateReport",
    "GcResult",
    "HomeError",
    "IntegrityError",
    "InvalidNameError",
    "LineageReport",
    "ListQuery",
    "NotFoundError",
    "PushResult",
    "Registry",
    "RegistryError",
    "Removal",
    "StatusChange",
    "UnsafeFormatError",
    "ValidationError",
    "VerifyReport",
    "YankedVersionWarning",
    "__version__",
]
