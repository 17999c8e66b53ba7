"""An adapter's tensors in memory, grouped by the base module they modify."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

PEFT_PREFIX = "base_model.model."


@dataclass(frozen=True)
class AdapterTensors:
    method: str
    config: Mapping[str, Any]
    tensors: Mapping[str, torch.Tensor]


def load_adapter_tensors(method: str, config: Mapping[str, Any], weights: Path) -> AdapterTensors:
    from safetensors.torch import load_file

    return AdapterTensors(method, dict(config), load_file(str(weights), device="cpu"))


def split_key(key: str, suffixes: tuple[str, ...]) -> tuple[str, str] | None:
    """``base_model.model.<module>.<suffix>`` -> (module, suffix), for a known suffix."""
    if not key.startswith(PEFT_PREFIX):
        return None
    rest = key[len(PEFT_PREFIX) :]
    for suffix in suffixes:
        if rest.endswith("." + suffix):
            return rest[: -len(suffix) - 1], suffix
    return None


def group_by_module(
    tensors: Mapping[str, torch.Tensor], suffixes: tuple[str, ...]
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """Tensors keyed by module, then by suffix; the rest are returned separately."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    rest: dict[str, torch.Tensor] = {}
    for key, tensor in tensors.items():
        parsed = split_key(key, suffixes)
        if parsed is None:
            rest[key] = tensor
        else:
            groups.setdefault(parsed[0], {})[parsed[1]] = tensor
    return groups, rest


def base_parameter(key: str) -> str | None:
    """The base parameter a full saved tensor replaces (``modules_to_save``, embeddings).

    PEFT saves them as ``base_model.model.<param path>``, a copied embedding as
    ``<module>.base_layer.weight``.
    """
    if not key.startswith(PEFT_PREFIX):
        return None
    return key[len(PEFT_PREFIX) :].replace(".base_layer.", ".")
