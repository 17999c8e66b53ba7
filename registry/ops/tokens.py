"""Trainable tokens: rows of an embedding matrix replaced by trained values.

PEFT saves them as ``<module>.trainable_tokens_delta`` (the TRAINABLE_TOKENS type) or
``<module>.token_adapter.trainable_tokens_delta`` (LoRA's ``trainable_token_indices``). Despite
the name the tensor holds the new rows themselves, not a difference: PEFT writes them over the
weight with ``index_copy`` in its forward and its merge, so applying them is exact. The row
indices come from the config (``token_indices``, or ``trainable_token_indices`` as a list for
the input embedding or a dict of module name -> indices).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from registry.errors import FormatError
from registry.ops.updates import WeightUpdate

TOKEN_DELTA = "trainable_tokens_delta"
LORA_TOKEN_DELTA = "token_adapter.trainable_tokens_delta"
TOKEN_SUFFIXES = (LORA_TOKEN_DELTA, TOKEN_DELTA)


def token_indices(config: Mapping[str, Any], module: str) -> tuple[int, ...]:
    """The rows of ``module``'s weight that the adapter's token values replace."""
    value = config.get("token_indices")
    if value is None:
        value = config.get("trainable_token_indices")
    if isinstance(value, dict):
        found = [v for k, v in value.items() if module == k or module.endswith("." + k)]
        # A tied output layer saved beside the embedding follows the embedding's indices.
        value = found[0] if found else _only(value)
    if not isinstance(value, list) or not all(isinstance(i, int) for i in value):
        raise FormatError(
            f"{module}: trainable tokens saved but the config gives no token indices for it; "
            "push the adapter_config.json saved with the weights"
        )
    return tuple(value)


def _only(value: Mapping[str, Any]) -> Any:
    return next(iter(value.values())) if len(value) == 1 else None


def token_updates(
    config: Mapping[str, Any], module: str, parts: Mapping[str, torch.Tensor]
) -> list[WeightUpdate]:
    """The row replacement one module's token values make, if it has any."""
    found = [parts[s] for s in TOKEN_SUFFIXES if s in parts]
    if not found:
        return []
    return [WeightUpdate(f"{module}.weight", "rows", found[0], rows=token_indices(config, module))]


def split_tokens(
    parts: Mapping[str, torch.Tensor],
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """A module's tensors split into (token values, the method's own factors)."""
    tokens = {k: v for k, v in parts.items() if k in TOKEN_SUFFIXES}
    return tokens, {k: v for k, v in parts.items() if k not in TOKEN_SUFFIXES}
