"""adapter-registry: the registry and lifecycle tool for PEFT adapters.

    from registry import Registry
    reg = Registry.open()
    result = reg.push("out/my-lora", evals={"accuracy": 0.93})
    reg.export(result.version.ref, "serve/my-lora")

Importing this package does not import torch; only reading tensors does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

# Where each public name lives. They are imported on first use (PEP 562), so that
# `import registry` (and `adapters --help`) does not pay for the catalog and SQLAlchemy.
_EXPORTS: dict[str, str] = {
    "Registry": "registry.api",
    "Check": "registry.check",
    "AccessError": "registry.errors",
    "ArgumentError": "registry.errors",
    "CatalogError": "registry.errors",
    "ConflictError": "registry.errors",
    "ExportError": "registry.errors",
    "FormatError": "registry.errors",
    "GateError": "registry.errors",
    "HomeError": "registry.errors",
    "IntegrityError": "registry.errors",
    "InvalidNameError": "registry.errors",
    "NotFoundError": "registry.errors",
    "RegistryError": "registry.errors",
    "ServerError": "registry.errors",
    "UnsafeFormatError": "registry.errors",
    "ValidationError": "registry.errors",
    "YankedVersionWarning": "registry.errors",
    "AliasChange": "registry.lifecycle.results",
    "AuditEvent": "registry.lifecycle.results",
    "Comparison": "registry.lifecycle.results",
    "EvalRecord": "registry.lifecycle.results",
    "GateReport": "registry.lifecycle.results",
    "LineageReport": "registry.lifecycle.results",
    "Removal": "registry.lifecycle.results",
    "StatusChange": "registry.lifecycle.results",
    "__version__": "registry.release",
    "RemoteRegistry": "registry.remote",
    "ListQuery": "registry.store.list_query",
    "AdapterVersion": "registry.store.results",
    "EvalScore": "registry.store.results",
    "ExportResult": "registry.store.results",
    "GcResult": "registry.store.results",
    "PushResult": "registry.store.results",
    "VerifyReport": "registry.store.results",
}

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


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
