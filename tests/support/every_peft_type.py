"""One real PEFT adapter of every PeftType that peft can build on the tiny Llama.

``TYPE_SETTINGS`` holds, per type, the config values the tiny model needs on top of peft's
defaults (the defaults are sized for real models: a rank or block larger than 32 features is
refused). ``CANNOT_BUILD`` names the types no tiny-model recipe here can build, with the reason;
docs/formats.md lists both.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import peft
import torch
from peft.mapping import PEFT_TYPE_TO_CONFIG_MAPPING
from peft.utils import PeftType

from support.models import base_name, make_inputs, name_base, tiny_llama
from support.peft_adapters import perturb, save_peft

ATTN = ["q_proj", "v_proj"]
_MODULES: dict[str, Any] = {"task_type": "CAUSAL_LM", "target_modules": ATTN}
_PROMPT: dict[str, Any] = {"task_type": "CAUSAL_LM", "num_virtual_tokens": 4}

TYPE_SETTINGS: dict[str, dict[str, Any]] = {
    "ADAPTION_PROMPT": {"task_type": "CAUSAL_LM", "adapter_len": 4, "adapter_layers": 1},
    "BEFT": _MODULES,
    "BOFT": _MODULES,
    "C3A": {**_MODULES, "block_size": 8},
    "CARTRIDGE": _PROMPT,
    "CPT": {"task_type": "CAUSAL_LM", "cpt_token_ids": [1, 2, 3], "cpt_mask": [1, 1, 1],
            "cpt_tokens_type_mask": [1, 2, 3]},
    "DEFT": _MODULES,
    "DELORA": _MODULES,
    "FOURIERFT": {**_MODULES, "n_frequency": 100},
    "FROD": _MODULES,
    "GLORA": _MODULES,
    "GRALORA": _MODULES,
    "HIRA": _MODULES,
    "HRA": _MODULES,
    "LILY": _MODULES,
    "LN_TUNING": {"task_type": "CAUSAL_LM", "target_modules": ["input_layernorm", "norm"]},
    "MISS": {**_MODULES, "r": 8},
    "MULTITASK_PROMPT_TUNING": _PROMPT,
    "OFT": _MODULES,
    "OSF": _MODULES,
    "PEANUT": _MODULES,
    "POLY": _MODULES,
    "PSOFT": {**_MODULES, "r": 8},
    "PVERA": _MODULES,
    "RANDLORA": _MODULES,
    "ROAD": {**_MODULES, "group_size": 8},
    "SHADOW": _MODULES,
    "SHIRA": {**_MODULES, "r": 4},
    "SUPERTUNING": _MODULES,
    "TINYLORA": _MODULES,
    "TRAINABLE_TOKENS": {"task_type": "CAUSAL_LM", "target_modules": ["embed_tokens"],
                         "token_indices": [1, 5, 9]},
    "UNILORA": _MODULES,
    "VBLORA": {**_MODULES, "vector_length": 16, "num_vectors": 32},
    "WAVEFT": {**_MODULES, "n_frequency": 100},
}

CANNOT_BUILD: dict[str, str] = {
    "ADAMSS": "needs scikit-learn, which the test environment does not install",
    "XLORA": "an X-LoRA model is built from other saved LoRA adapters and needs use_cache=False",
}


def buildable_types() -> list[str]:
    """The PeftTypes of the installed peft that a recipe here builds (the types analysed in
    full elsewhere, LoRA and kin, have their own interop tests)."""
    return sorted(t.value for t in PeftType if t.value in TYPE_SETTINGS)


def make_typed_adapter(peft_type: str, directory: Path, seed: int = 0) -> peft.PeftModel:
    """Build ``peft_type`` on a tiny Llama named ``tiny/llama``, perturb it, save it."""
    config_class = PEFT_TYPE_TO_CONFIG_MAPPING[PeftType(peft_type)]
    base = name_base(tiny_llama(seed), base_name("llama"))
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peft.get_peft_model(base, config_class(**TYPE_SETTINGS[peft_type]))
    perturb(model, seed + 1)
    model.eval()
    save_peft(model, directory)
    return model


# Types that build and save, but whose forward fails inside peft 0.21.2 on a Llama (the shadow
# layer hands a carrier object to code that expects a tensor): compared by adapter state instead.
NO_FORWARD: dict[str, str] = {
    "SHADOW": "its forward fails inside peft 0.21.2 on Llama ('ShadowCarrier' has no 'view')",
}

# Types whose forward needs the task of each example (multi-task prompt tuning, Poly).
_TASK_IDS = ("MULTITASK_PROMPT_TUNING", "POLY")


def typed_inputs(peft_type: str) -> dict[str, torch.Tensor]:
    inputs = make_inputs(0)
    if peft_type in _TASK_IDS:
        inputs["task_ids"] = torch.zeros(inputs["input_ids"].shape[0], dtype=torch.long)
    return inputs
