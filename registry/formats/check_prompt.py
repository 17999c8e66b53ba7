"""Prompt tuning, p-tuning and prefix tuning tensors against their config.

One tensor ``prompt_embeddings``: [num_virtual_tokens * num_transformer_submodules, token_dim]
for prompt tuning and p-tuning (p-tuning saves its encoder's output), and
[num_virtual_tokens, num_layers * 2 * token_dim] for prefix tuning (a key and a value per
layer). Besides it only ``modules_to_save`` tensors, named ``base_model.<module>.<param>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, shape_of
from registry.formats.matching import in_modules_to_save
from registry.formats.model import TensorInfo
from registry.formats.text import show

EMBEDDINGS = "prompt_embeddings"
_PREFIXES = ("base_model.model.", "base_model.")


def check_prompt(
    method: str, config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]
) -> CheckResult:
    result = CheckResult()
    for key in sorted(tensors):
        if key == EMBEDDINGS:
            continue
        prefix = next((p for p in _PREFIXES if key.startswith(p)), None)
        if prefix is not None and in_modules_to_save(config, key[len(prefix) :]):
            result.features.add("modules_to_save")
        else:
            result.problems.append(
                f"tensor {show(key)}: not a {method} tensor (expected only {EMBEDDINGS} "
                "and modules_to_save tensors)"
            )
    embeddings = tensors.get(EMBEDDINGS)
    if embeddings is None:
        result.problems.append(f"tensor {EMBEDDINGS} is missing")
        return result
    tokens = config.get("num_virtual_tokens")
    token_dim = config.get("token_dim")
    if method == "prefix_tuning":
        if config.get("prefix_projection") is True:
            result.features.add("prefix_projection")
        layers = config.get("num_layers")
        width = layers * 2 * token_dim if layers and token_dim else None
        expected = (tokens, width)
        how = "[num_virtual_tokens, num_layers * 2 * token_dim]"
    else:
        submodules = config.get("num_transformer_submodules") or 1
        expected = (tokens * submodules if tokens else None, token_dim)
        how = "[num_virtual_tokens * num_transformer_submodules, token_dim]"
    shape = embeddings.shape
    mismatch = len(shape) != 2 or any(
        e is not None and e != s for e, s in zip(expected, shape, strict=True)
    )
    if mismatch:
        shown = ", ".join("?" if e is None else str(e) for e in expected)
        result.problems.append(
            f"tensor {EMBEDDINGS}: shape {shape_of(embeddings)}, expected [{shown}] = {how}"
        )
    return result
