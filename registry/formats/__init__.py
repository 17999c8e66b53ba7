"""Reading and writing on-disk adapter formats: PEFT directories, AdapterHub saves and
single-file diffusers / kohya LoRAs.

Reading headers, configs and shapes never imports torch; only the NaN/Inf scan, the explicit
pickle conversion and writing tensors do, inside the functions that need tensor values.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.formats.config_file import CONFIG_NAME, config_bytes, normalise_peft_config
    from registry.formats.model import (
        FILE_ROLES,
        FOREIGN_METHODS,
        METHODS,
        SOURCE_FORMATS,
        AdapterFile,
        AdapterSource,
        TensorInfo,
    )
    from registry.formats.nonfinite import find_nonfinite
    from registry.formats.peft_types import (
        ANALYSIS_LEVELS,
        DEFAULT_ANALYSIS,
        KNOWN_TYPES,
        analysis_of,
        method_of,
    )
    from registry.formats.reader import (
        PEFT_TYPES,
        WEIGHTS_NAMES,
        read_adapter_dir,
        read_adapter_files,
    )
    from registry.formats.safetensors_header import read_safetensors_header
    from registry.formats.single_file import SINGLE_FILE_FORMATS
    from registry.formats.writer import write_peft_adapter

# Where each name lives, imported on first use (PEP 562): the catalog and the CLI need
# only the small modules (``peft_types``), not the reader and its JSON Schemas.
_EXPORTS: dict[str, str] = {
    "CONFIG_NAME": "registry.formats.config_file",
    "config_bytes": "registry.formats.config_file",
    "normalise_peft_config": "registry.formats.config_file",
    "FILE_ROLES": "registry.formats.model",
    "FOREIGN_METHODS": "registry.formats.model",
    "METHODS": "registry.formats.model",
    "SOURCE_FORMATS": "registry.formats.model",
    "AdapterFile": "registry.formats.model",
    "AdapterSource": "registry.formats.model",
    "TensorInfo": "registry.formats.model",
    "find_nonfinite": "registry.formats.nonfinite",
    "ANALYSIS_LEVELS": "registry.formats.peft_types",
    "DEFAULT_ANALYSIS": "registry.formats.peft_types",
    "KNOWN_TYPES": "registry.formats.peft_types",
    "analysis_of": "registry.formats.peft_types",
    "method_of": "registry.formats.peft_types",
    "PEFT_TYPES": "registry.formats.reader",
    "WEIGHTS_NAMES": "registry.formats.reader",
    "read_adapter_dir": "registry.formats.reader",
    "read_adapter_files": "registry.formats.reader",
    "read_safetensors_header": "registry.formats.safetensors_header",
    "SINGLE_FILE_FORMATS": "registry.formats.single_file",
    "write_peft_adapter": "registry.formats.writer",
}

__all__ = [
    "ANALYSIS_LEVELS",
    "CONFIG_NAME",
    "DEFAULT_ANALYSIS",
    "FILE_ROLES",
    "FOREIGN_METHODS",
    "KNOWN_TYPES",
    "METHODS",
    "PEFT_TYPES",
    "SINGLE_FILE_FORMATS",
    "SOURCE_FORMATS",
    "WEIGHTS_NAMES",
    "AdapterFile",
    "AdapterSource",
    "TensorInfo",
    "analysis_of",
    "config_bytes",
    "find_nonfinite",
    "method_of",
    "normalise_peft_config",
    "read_adapter_dir",
    "read_adapter_files",
    "read_safetensors_header",
    "write_peft_adapter",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'registry.formats' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
