"""Output layers tied to the input embedding: one tensor under two names.

transformers ties ``lm_head.weight`` (GPT-2, many causal LMs; ``embed_out`` in GPT-NeoX) to
the input embedding when the config says ``tie_word_embeddings`` (true unless the config says
otherwise). The tied name is then absent from a checkpoint and from a live model's deduplicated
parameters, but an adapter may still name it: PEFT saves tied copies of trainable tokens and,
with ``ensure_weight_tying``, LoRA factors for the output layer. Torch-free: names and configs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from registry.formats.check_tokens import TIED_OUTPUTS

INPUT_EMBEDDINGS: tuple[str, ...] = ("embed_tokens", "wte", "word_embeddings", "embed_in", "shared")


def is_tied_output(parameter: str) -> bool:
    parts = parameter.split(".")
    return len(parts) >= 2 and parts[-2] in TIED_OUTPUTS and parts[-1] == "weight"


def ties_embeddings(config: Mapping[str, Any]) -> bool:
    """Whether a base with ``config`` (its config.json) ties output and input embeddings."""
    found = config.get("tie_word_embeddings")
    if found is None:
        text = config.get("text_config")
        if isinstance(text, Mapping):
            found = text.get("tie_word_embeddings")
    return found is not False  # transformers' default is to tie


def tied_embedding(parameter: str, names: Collection[str], config: Mapping[str, Any]) -> str | None:
    """The input embedding weight that ``parameter`` (absent from ``names``) is tied to."""
    if parameter in names or not is_tied_output(parameter) or not ties_embeddings(config):
        return None
    found = [n for n in names if _is_input_embedding(n)]
    return found[0] if len(found) == 1 else None


def _is_input_embedding(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2] in INPUT_EMBEDDINGS and parts[-1] == "weight"


def tied_output(parameter: str, names: Collection[str], config: Mapping[str, Any]) -> str | None:
    """The output layer weight that shares input embedding ``parameter`` in a checkpoint that
    stores the tensor once (the output name is absent from ``names``)."""
    if not _is_input_embedding(parameter) or not ties_embeddings(config):
        return None
    output = "embed_out.weight" if parameter.endswith("embed_in.weight") else "lm_head.weight"
    embeddings = [n for n in names if _is_input_embedding(n)]
    return output if output not in names and embeddings == [parameter] else None
