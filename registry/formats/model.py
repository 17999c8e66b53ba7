"""The values the formats package hands out: what an adapter directory holds."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Adapter methods the registry analyses fully, named as PEFT's peft_type lowercased
# ("bottleneck" and "adapterhub_*" are AdapterHub adapters, named apart so that nothing takes
# them for PEFT's). Any other PEFT type is stored too, under its lowercased peft_type, with a
# lower analysis level.
METHODS: tuple[str, ...] = (
    "lora",
    "ia3",
    "prefix_tuning",
    "prompt_tuning",
    "p_tuning",
    "loha",
    "lokr",
    "adalora",
    "vera",
    "trainable_tokens",
    "ln_tuning",
    "bottleneck",
    "adapterhub_lora",
    "adapterhub_ia3",
    "adapterhub_prefix_tuning",
    "diffusers_lora",
    "kohya_lora",
)
# Methods of other libraries' formats: stored and checked here, applied by their own library.
FOREIGN_METHODS: dict[str, str] = {
    "bottleneck": "the AdapterHub library (adapters)",
    "adapterhub_lora": "the AdapterHub library (adapters)",
    "adapterhub_ia3": "the AdapterHub library (adapters)",
    "adapterhub_prefix_tuning": "the AdapterHub library (adapters)",
    "diffusers_lora": "diffusers (pipeline.load_lora_weights)",
    "kohya_lora": "diffusers (pipeline.load_lora_weights) or the tool that trained it",
}

SOURCE_FORMATS: tuple[str, ...] = ("peft", "adapterhub", "diffusers", "kohya")
FILE_ROLES: tuple[str, ...] = ("config", "weights", "card", "extra")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor as a safetensors header declares it."""

    name: str
    dtype: str  # safetensors dtype string: "F32", "F16", "BF16", ...
    shape: tuple[int, ...]
    offsets: tuple[int, int]  # [begin, end) inside the data section

    @property
    def numel(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count


@dataclass(frozen=True)
class AdapterFile:
    """One file to store: its path inside the adapter and where its bytes are now."""

    path: str  # relative POSIX path inside the adapter directory
    source: Path
    role: str  # one of FILE_ROLES


@dataclass(frozen=True)
class AdapterSource:
    """An adapter read and checked: its config, its files and its tensors."""

    source_format: str  # one of SOURCE_FORMATS
    method: str  # one of METHODS when analysis is "full"; else peft_type lowercased
    config: dict[str, Any]  # normalised: set-like lists sorted, keys in canonical order
    config_path: str
    config_bytes: bytes  # canonical bytes to store instead of the original config file
    weights_path: str
    files: tuple[AdapterFile, ...]  # sorted by path; the config's source holds the original bytes
    tensors: Mapping[str, TensorInfo]
    base_model_name: str | None
    base_model_revision: str | None
    skipped: tuple[str, ...]  # "<file>: <why it is not stored>"
    features: tuple[str, ...]  # e.g. ("dora", "rslora"), for display
    analysis: str = "full"  # how deeply it was checked: see formats/peft_types.py
