"""Adapters for the operator tests: several real PEFT adapters on one shared tiny base.

``make_adapter`` builds each adapter on a base seeded like the adapter; combining needs
several adapters on the *same* base, so here the base is built once (``base_model``, seed 0)
and each adapter gets its own configuration and perturbation seed. Also LoRA on the tiny
convolutional model, and readers of what was saved.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import peft
import torch
from peft import IA3Config, LoraConfig, PeftConfig
from torch import nn

from registry.ops.lora import lora_delta, lora_factors
from registry.ops.tensors import AdapterTensors, group_by_module, load_adapter_tensors
from support.models import base_model, tiny_conv
from support.peft_adapters import RECIPES, lora_config, perturb, save_peft

# Kinds that are also ``make_adapter`` kinds share its recipe's config.
CONFIGS: dict[str, Callable[[], PeftConfig]] = {
    "lora": RECIPES["lora"].config,
    "lora_r8_qkv": lambda: lora_config(r=8, lora_alpha=4, target_modules=["q_proj", "k_proj"]),
    "rslora": lambda: lora_config(r=6, lora_alpha=12, use_rslora=True),
    "patterns": RECIPES["lora_patterns"].config,
    "mlp": lambda: lora_config(r=2, lora_alpha=2, target_modules=["up_proj", "down_proj"]),
    "dora": RECIPES["dora"].config,
    "embedding": RECIPES["lora_embedding"].config,
    "loha": RECIPES["loha"].config,
    "lokr": RECIPES["lokr"].config,
    "ia3": RECIPES["ia3"].config,
    "ia3_b": lambda: IA3Config(
        task_type="CAUSAL_LM",
        target_modules=["v_proj", "up_proj"],
        feedforward_modules=["up_proj"],
    ),
    "gpt2": lambda: lora_config(target_modules=["c_attn"], fan_in_fan_out=True),
    "gpt2_r2": lambda: lora_config(r=2, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True),
}
ARCH = {"gpt2": "gpt2", "gpt2_r2": "gpt2"}


def save_adapter(kind: str, directory: Path, seed: int) -> Path:
    """Adapter ``kind`` on the shared base of its architecture (base seed 0), saved."""
    model = peft.get_peft_model(base_model(ARCH.get(kind, "llama")), CONFIGS[kind]())
    perturb(model, seed)
    return save_peft(model, directory, embedding=kind == "embedding")


def read_adapter(directory: Path) -> AdapterTensors:
    config = json.loads((directory / "adapter_config.json").read_text())
    method = str(config["peft_type"]).lower()
    return load_adapter_tensors(method, config, directory / "adapter_model.safetensors")


def lora_deltas(directory: Path) -> dict[str, torch.Tensor]:
    """Module -> scaled delta of a saved LoRA adapter, in B @ A orientation."""
    adapter = read_adapter(directory)
    groups, _ = group_by_module(adapter.tensors, ("lora_A.weight", "lora_B.weight"))
    emb, _ = group_by_module(adapter.tensors, ("lora_embedding_A", "lora_embedding_B"))
    found = {}
    for module, parts in {**groups, **emb}.items():
        factors = lora_factors(adapter.config, module, parts)
        delta = lora_delta(factors)
        found[module] = delta.T if factors.layout in ("linear_t", "embedding") else delta
    return found


def conv_adapter(directory: Path, seed: int, **overrides: Any) -> peft.PeftModel:
    settings: dict[str, Any] = {
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ["conv1", "conv2", "seq", "head"],
    }
    settings.update(overrides)
    model = peft.get_peft_model(tiny_conv(), LoraConfig(**settings))
    perturb(model, seed)
    model.eval()
    save_peft(model, directory)
    return model


def state_of(model: nn.Module) -> Mapping[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
