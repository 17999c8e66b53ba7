"""Tiny transformers 5 models whose live tensor names differ from their saved ones, and
adapters for them.

- ViT: saved as ``vit.encoder.layer.N.attention.attention.query``, live as
  ``vit.layers.N.attention.q_proj``; an adapter trained on the live model names the live modules.
- Mixtral: saved per expert (``block_sparse_moe.experts.E.w1/w2/w3``), live fused
  (``mlp.experts.gate_up_proj`` [E, 2 * ffn, hidden], ``mlp.experts.down_proj``); an adapter
  trained before transformers 5 names the experts as saved, and peft converts it on load.
"""

from __future__ import annotations

import json
from pathlib import Path

import peft
import torch
from safetensors.torch import save_file
from transformers import (
    MixtralConfig,
    MixtralForCausalLM,
    PreTrainedModel,
    ViTConfig,
    ViTForImageClassification,
)

from support.models import name_base
from support.peft_adapters import perturb, save_peft

VIT_NAME = "tiny/vit"
MIXTRAL_NAME = "tiny/mixtral"
EXPERTS = 3
RANK = 2


def tiny_vit(seed: int = 0) -> ViTForImageClassification:
    torch.manual_seed(seed)
    config = ViTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        image_size=16,
        patch_size=8,
        num_labels=3,
    )
    return name_base(ViTForImageClassification(config).eval(), VIT_NAME)  # type: ignore[return-value]


def tiny_mixtral(seed: int = 0) -> MixtralForCausalLM:
    torch.manual_seed(seed)
    config = MixtralConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=24,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_local_experts=EXPERTS,
        num_experts_per_tok=2,
        max_position_embeddings=64,
    )
    model = MixtralForCausalLM(config).eval()
    return name_base(model, MIXTRAL_NAME)  # type: ignore[return-value]


def vit_inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {"pixel_values": torch.randn(2, 3, 16, 16, generator=generator)}


def mixtral_inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, 64, (2, 8), generator=generator)
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


def vit_lora(directory: Path, seed: int = 1) -> Path:
    """LoRA on the live ViT's q_proj / v_proj with the classifier in modules_to_save."""
    config = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], modules_to_save=["classifier"]
    )
    model = peft.get_peft_model(tiny_vit(), config)
    perturb(model, seed)
    return save_peft(model, directory)


def mixtral_v4_lora(directory: Path, seed: int = 1) -> Path:
    """A LoRA adapter as peft saved it on Mixtral before transformers 5: per-expert
    ``w1``/``w2``/``w3`` factors, plus the attention's q_proj."""
    model = tiny_mixtral()
    cfg = model.config
    generator = torch.Generator().manual_seed(seed)

    def noise(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.1

    tensors: dict[str, torch.Tensor] = {}
    hidden, ffn = cfg.hidden_size, cfg.intermediate_size
    for layer in range(cfg.num_hidden_layers):
        prefix = f"base_model.model.model.layers.{layer}"
        tensors[f"{prefix}.self_attn.q_proj.lora_A.weight"] = noise(RANK, hidden)
        tensors[f"{prefix}.self_attn.q_proj.lora_B.weight"] = noise(hidden, RANK)
        for expert in range(EXPERTS):
            for name, (out, inp) in {
                "w1": (ffn, hidden),
                "w2": (hidden, ffn),
                "w3": (ffn, hidden),
            }.items():
                key = f"{prefix}.block_sparse_moe.experts.{expert}.{name}"
                tensors[f"{key}.lora_A.weight"] = noise(RANK, inp)
                tensors[f"{key}.lora_B.weight"] = noise(out, RANK)
    directory.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = peft.LoraConfig(
        r=RANK,
        lora_alpha=2 * RANK,
        target_modules=["q_proj", "w1", "w2", "w3"],
        base_model_name_or_path=MIXTRAL_NAME,
    ).to_dict()
    config["peft_type"] = "LORA"
    config["target_modules"] = sorted(config["target_modules"])
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, default=str))
    return directory


def forward(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits  # type: ignore[no-any-return]


def state(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}
