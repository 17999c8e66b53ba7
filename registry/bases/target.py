"""The base model an adapter is checked against or loaded onto: a live module, a
directory of safetensors, a snapshot in the Hugging Face cache, or a catalog record.

Each becomes a ``BaseTarget``: its fingerprint (names, shapes, sampled values),
its quantization and its model config, which is all the compatibility checks need.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.bases.file_source import fingerprint_directory
from registry.bases.fingerprint import Fingerprint
from registry.bases.hub_cache import cached_snapshot
from registry.bases.module_source import fingerprint_module
from registry.errors import FingerprintError

if TYPE_CHECKING:
    import torch

    from registry.store.results import BaseModelRecord

QUANTIZATIONS = ("none", "nf4", "fp4", "int8", "gptq", "awq", "unknown")


@dataclass(frozen=True)
class BaseTarget:
    label: str
    fingerprint: Fingerprint
    quantization: str = "none"
    config: Mapping[str, Any] = field(default_factory=dict)
    record: BaseModelRecord | None = None


def quantization_from_config(config: Mapping[str, Any]) -> str:
    """What a transformers ``quantization_config`` says the weights are."""
    quant = config.get("quantization_config")
    if not isinstance(quant, Mapping):
        return "none"
    method = str(quant.get("quant_method", "")).lower()
    if method == "bitsandbytes" or "load_in_4bit" in quant or "load_in_8bit" in quant:
        if quant.get("load_in_4bit"):
            return str(quant.get("bnb_4bit_quant_type", "nf4")).lower()
        if quant.get("load_in_8bit"):
            return "int8"
    if method in ("gptq", "awq"):
        return method
    return "unknown" if method else "none"


def read_model_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def target_from_directory(
    directory: Path, label: str | None = None, *, exhaustive: bool = False
) -> BaseTarget:
    config = read_model_config(directory)
    return BaseTarget(
        label=label or str(directory),
        fingerprint=fingerprint_directory(directory, exhaustive=exhaustive),
        quantization=quantization_from_config(config),
        config=config,
    )


def target_from_hub_cache(text: str, *, exhaustive: bool = False) -> BaseTarget:
    repo_id, _, revision = text.partition("@")
    snapshot = cached_snapshot(repo_id, revision or None)
    label = f"{repo_id}@{snapshot.commit[:12]}"
    return target_from_directory(snapshot.path, label=label, exhaustive=exhaustive)


def target_from_record(record: BaseModelRecord) -> BaseTarget:
    if record.fingerprint is None or not record.fingerprint.is_complete:
        raise FingerprintError(
            f"base model {record.ref} has no recorded fingerprint; re-add it with "
            "`adapters base add DIR`"
        )
    return BaseTarget(
        label=record.ref,
        fingerprint=record.fingerprint,
        quantization=record.quantization,
        config=record.config,
        record=record,
    )


def module_quantization(model: torch.nn.Module) -> str:
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "to_dict"):
        found = quantization_from_config(config.to_dict())
        if found != "none":
            return found
    for param in model.parameters():
        kind = type(param).__name__
        if kind == "Params4bit":
            return str(getattr(param, "quant_type", "nf4"))
        if kind == "Int8Params":
            return "int8"
    return "none"


def target_from_module(
    model: torch.nn.Module, label: str | None = None, *, digest: Iterable[str] | bool = False
) -> BaseTarget:
    """The live ``model`` as a base; ``digest``: tensors to hash in full (True: all)."""
    config = getattr(model, "config", None)
    config_dict = config.to_dict() if config is not None and hasattr(config, "to_dict") else {}
    name = config_dict.get("_name_or_path") or type(model).__name__
    return BaseTarget(
        label=label or f"the given {type(model).__name__} ({name})",
        fingerprint=fingerprint_module(model, digest=digest),
        quantization=module_quantization(model),
        config=config_dict,
    )


@dataclass(frozen=True)
class LocatedBase:
    """Where push found an adapter's base weights by their name, or why it did not."""

    target: BaseTarget | None
    note: str  # where the weights were found, or why they were not


def locate_base(name: str, revision: str | None, *, exhaustive: bool = False) -> LocatedBase:
    """The base weights an adapter names (``base_model_name_or_path``, ``revision``): a local
    directory of that name, else that Hub id's snapshot in the local Hugging Face cache
    (offline). A directory that exists but cannot be fingerprinted is an error."""
    path = Path(name).expanduser()
    try:
        is_dir = path.is_dir()
    except OSError:  # a name no path can have (too long a component): not a directory
        is_dir = False
    if is_dir:
        return LocatedBase(target_from_directory(path, exhaustive=exhaustive), f"{path}")
    reasons = [f"{name} is not a local directory"]
    try:
        snapshot = cached_snapshot(name, revision)
    except FingerprintError as exc:
        reasons.append(str(exc))
    else:
        label = f"{name}@{snapshot.commit[:12]}"
        target = target_from_directory(snapshot.path, label=label, exhaustive=exhaustive)
        return LocatedBase(target, f"the Hugging Face cache ({label})")
    return LocatedBase(None, "; ".join(reasons))
