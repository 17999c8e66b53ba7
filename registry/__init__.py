"""adapter-registry: the registry and lifecycle tool for PEFT adapters.

    from registry import Registry
    reg = Registry.open()
    result = reg.push("out/my-lora", evals={"accuracy": 0.93})
    reg.export(result.version.ref, "serve/my-lora")

Importing this package does not import torch; only reading tensors does.
"""

from __future__ import annotations

from registry.api import Registry
from registry.check import Check
from registry.errors import (
    AccessError,
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
    ServerError,
    UnsafeFormatError,
    ValidationError,
    YankedVersionWarning,
)
from registry.lifecycle.results import (
    AliasChange,
    AuditEvent,
    Comparison,
    EvalRecord,
    GateReport,
    LineageReport,
    Removal,
    StatusChange,
)
from registry.release import __version__
from registry.remote import RemoteRegistry
from registry.store.list_query import ListQuery
from registry.store.results import (
    AdapterVersion,
    EvalScore,
    ExportResult,
    GcResult,
    PushResult,
    VerifyReport,
)

__all__ = [
    "AccessError",
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
    "RemoteRegistry",
    "Removal",
    "ServerError",
    "StatusChange",
    "UnsafeFormatError",
    "ValidationError",
    "VerifyReport",
    "YankedVersionWarning",
    "__version__",
]
