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
    CatalogError,
    ConflictError,
    ExportError,
    FormatError,
    HomeError,
    IntegrityError,
    InvalidNameError,
    NotFoundError,
    RegistryError,
    UnsafeFormatError,
    ValidationError,
)
from registry.results import (
    AdapterVersion,
    Check,
    EvalScore,
    ExportResult,
    PushResult,
    VerifyReport,
)

__version__ = "0.1.0"

__all__ = [
    "AdapterVersion",
    "CatalogError",
    "Check",
    "ConflictError",
    "EvalScore",
    "ExportError",
    "ExportResult",
    "FormatError",
    "HomeError",
    "IntegrityError",
    "InvalidNameError",
    "NotFoundError",
    "PushResult",
    "Registry",
    "RegistryError",
    "UnsafeFormatError",
    "ValidationError",
    "VerifyReport",
    "__version__",
]
