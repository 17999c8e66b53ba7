"""Reading and writing on-disk adapter formats: PEFT directories and AdapterHub bottlenecks.

Reading headers, configs and shapes never imports torch; only the NaN/Inf scan, the explicit
pickle conversion and writing tensors do, inside the functions that need tensor values.
"""

from __future__ import annotations

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
