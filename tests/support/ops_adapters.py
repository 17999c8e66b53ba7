"""Adapters for the operator tests: several real PEFT adapters on one shared tiny base.

``factory.make_adapter`` builds each adapter on a base seeded like the adapter; combining
needs several adapters on the *same* base, so here the base is built once and each adapter
gets its own configuration and perturbation seed. Also a tiny convolutional model, since
the transformers test models have no convolutions PEFT adapts as ``nn.Conv*``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import peft
import torch
from peft import IA3Config, LoHaConfig, LoKrConfig, LoraConfig, PeftConfig
from torch import nn

from registry.ops.lora import lora_delta, lora_factors
from registry.ops.tensors import AdapterTensors, group_by_module, load_adapter_tensors
from support.peft_adapters import PERTURB_STD, tiny_gpt2, tiny_llama

ATTN = ["q_proj", "v_proj"]


def llama_lora(**overrides: Any) -> LoraConfig:
    settings: dict[str, Any] = {
        "task_type": "CAUSAL_LM",
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ATTN,
    }
    settings.update(overrides)
    return LoraConfig(**settings)


CONFIGS: dict[str, Callable[[], PeftConfig]] = {
    "lora": lambda: llama_lora(),
    "lora_r8_qkv": lambda: llama_lora(r=8, lora_alpha=4, target_modules=["q_proj", "k_proj"]),
    "rslora": lambda: llama_lora(r=6, lora_alpha=12, use_rslora=True),
    "patterns": lambda: llama_lora(
        target_modules=["q_proj", "v_proj", "up_proj"],
        rank_pattern={"v_proj": 2, "layers.0.self_attn.q_proj": 8},
        alpha_pattern={"up_proj": 16},
    ),
    "mlp": lambda: llama_lora(r=2, lora_alpha=2, target_modules=["up_proj", "down_proj"]),
    "dora": lambda: llama_lora(use_dora=True),
    "embedding": lambda: llama_lora(target_modules=["embed_tokens", "q_proj"]),
    "loha": lambda: LoHaConfig(task_type="CAUSAL_LM", r=4, alpha=8, target_modules=ATTN),
    "lokr": lambda: LoKrConfig(task_type="CAUSAL_LM", r=4, alpha=8, target_modules=ATTN),
    "ia3": lambda: IA3Config(
        task_type="CAUSAL_LM",
        target_modules=["k_proj", "v_proj", "down_proj"],
        feedforward_modules=["down_proj"],
    ),
    "ia3_b": lambda: IA3Config(
        task_type="CAUSAL_LM",
        target_modules=["v_proj", "up_proj"],
        feedforward_modules=["up_proj"],
    ),
    "gpt2": lambda: LoraConfig(
        task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["c_attn"], fan_in_fan_out=True
    ),
    "gpt2_r2": lambda: LoraConfig(
        task_type="CAUSAL_LM",
        r=2,
        lora_alpha=8,
        target_modules=["c_attn", "c_proj"],
        fan_in_fan_out=True,
    ),
}
ARCH = {"gpt2": "gpt2", "gpt2_r2": "gpt2"}


def base_model(arch: str = "llama", seed: int = 0) -> nn.Module:
    model = tiny_gpt2(seed) if arch == "gpt2" else tiny_llama(seed)
    model.config.name_or_path = model.name_or_path = f"tiny/{arch}"
    return model


def perturb(model: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * PERTURB_STD)


def save_adapter(kind: str, directory: Path, seed: int) -> Path:
    """Adapter ``kind`` on the shared base of its architecture (base seed 0), saved."""
    model = peft.get_peft_model(base_model(ARCH.get(kind, "llama")), CONFIGS[kind]())
    perturb(model, seed)
    model.save_pretrained(directory, save_embedding_layers=kind == "embedding")
    return directory


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


class TinyConv(nn.Module):
    """Conv2d 3x3, Conv2d 1x1 and Conv1d layers, with a linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(8, 6, kernel_size=1)
        self.seq = nn.Conv1d(6, 5, kernel_size=3, padding=1)
        self.head = nn.Linear(5, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))  # [b, 6, h, w]
        x = torch.relu(self.seq(x.flatten(2)))  # [b, 5, h * w]
        return self.head(x.mean(dim=2))


def tiny_conv(seed: int = 0) -> TinyConv:
    torch.manual_seed(seed)
    return TinyConv().eval()


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
    model.save_pretrained(directory)
    return model


def state_of(model: nn.Module) -> Mapping[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
