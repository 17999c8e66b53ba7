"""LoRA initialisations after which the saved factors are not a delta on the base.

PiSSA, OLoRA, CorDA, LoftQ and LoRA-GA start from factors taken out of the base
weights and write the residual back into the base. Saved without PEFT's conversion
(``save_pretrained(path_initial_model_for_weight_conversion=...)``), the config keeps
that ``init_lora_weights`` value and PEFT recomputes the residual base when it loads
the adapter, so ``base + B A`` on the unmodified weights is not the trained model.
Converted saves carry ``init_lora_weights: true`` and are ordinary deltas.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Values after which the base weights are left as they are, so the factors are a delta.
_BASE_UNTOUCHED = ("gaussian", "eva", "orthogonal")


def base_rewriting_init(method: str, config: Mapping[str, Any]) -> str | None:
    """The ``init_lora_weights`` value that makes PEFT rewrite the base at load, or None."""
    if method != "lora":
        return None
    value = config.get("init_lora_weights", True)
    if value is None or isinstance(value, bool) or value in _BASE_UNTOUCHED:
        return None
    return str(value)


def base_rewriting_message(ref: str, init: str) -> str:
    return (
        f"{ref} was saved with init_lora_weights={init!r} without conversion: PEFT rebuilds "
        "the base weights from it when loading, so adding its factors to the unchanged base "
        "would give other outputs. Load it with mode='peft', or save it converted "
        "(save_pretrained(..., path_initial_model_for_weight_conversion=DIR)) and push that"
    )
