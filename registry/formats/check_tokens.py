"""Trainable tokens (the TRAINABLE_TOKENS type) against their config.

One ``trainable_tokens_delta`` per targeted embedding: the new values of the rows listed in
``token_indices``, shape [len(token_indices), dim]. PEFT also saves a copy under an output
layer tied to the embedding (GPT-2's ``lm_head``), which ``target_modules`` does not name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, group_peft_tensors, shape_of
from registry.formats.matching import targets_known
from registry.formats.model import TensorInfo
from registry.formats.text import show

DELTA = "trainable_tokens_delta"
# Output layers that transformers ties to the input embedding.
TIED_OUTPUTS: tuple[str, ...] = ("lm_head", "embed_out")


def tied_outputs(modules: list[str]) -> list[str]:
    """Of ``modules``, the output layers a tied model shares with its input embedding."""
    return [m for m in modules if m.rsplit(".", 1)[-1] in TIED_OUTPUTS]


def check_tokens(config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> CheckResult:
    indices = config.get("token_indices")
    targets = config.get("target_modules")
    widened = dict(config)
    if targets_known(config) and isinstance(targets, list):
        found = [k[: -len(DELTA) - 1] for k in tensors if k.endswith("." + DELTA)]
        widened["target_modules"] = targets + [m.split(".", 2)[-1] for m in tied_outputs(found)]
    groups, result = group_peft_tensors("trainable_tokens", widened, tensors, (DELTA,))
    result.features.add("trainable_tokens")
    if not isinstance(indices, list) or not indices:
        result.problems.append("token_indices must list the token ids the adapter trains")
        return result
    if len(set(indices)) != len(indices):
        result.problems.append("token_indices lists a token id twice")
    for module, parts in sorted(groups.items()):
        delta = parts[DELTA]
        if len(delta.shape) != 2 or delta.shape[0] != len(indices):
            result.problems.append(
                f"module {show(module)}: {DELTA} has shape {shape_of(delta)}, expected "
                f"[{len(indices)}, dim] for the {len(indices)} token_indices"
            )
    return result
