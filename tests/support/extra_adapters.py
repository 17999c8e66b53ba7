"""Real PEFT adapters that use LoRA's extras and the simple full-replacement types.

Each kind is built with the real ``peft`` on a tiny base of ``support.models`` (GPT-2 ties its
``lm_head`` to ``transformer.wte``; the tiny Llama does not tie), perturbed and saved, as
``support.peft_adapters`` does for the plain kinds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peft
import torch
from peft import LNTuningConfig, TrainableTokensConfig

from support.models import base_model, base_name, name_base, tiny_qwen3_moe
from support.peft_adapters import lora_config, perturb, save_peft


@dataclass(frozen=True)
class Extra:
    arch: str
    config: Callable[[], Any]
    embedding: bool = False  # save with save_embedding_layers="auto"


EXTRAS: dict[str, Extra] = {
    # trainable tokens: inside LoRA (alone, and next to LoRA targets), and the standalone type
    "tokens_only": Extra("llama", lambda: lora_config(target_modules=["q_proj"], r=1,
                                                     trainable_token_indices=[1, 5, 9])),
    "lora_tokens": Extra("llama", lambda: lora_config(
        trainable_token_indices={"embed_tokens": [2, 7]})),
    "lora_tokens_tied": Extra("gpt2", lambda: lora_config(target_modules=["c_attn"],
                                                          trainable_token_indices=[1, 5, 9])),
    "trainable_tokens": Extra("llama", lambda: TrainableTokensConfig(
        target_modules=["embed_tokens"], token_indices=[1, 5, 9])),
    "trainable_tokens_tied": Extra("gpt2", lambda: TrainableTokensConfig(
        target_modules=["wte"], token_indices=[3, 4, 100])),
    # lora_bias on layers with a bias (GPT-2 Conv1D, BERT) and without (Llama)
    "lora_bias_gpt2": Extra("gpt2", lambda: lora_config(target_modules=["c_attn", "c_proj"],
                                                        fan_in_fan_out=True, lora_bias=True)),
    "lora_bias_bert": Extra("bert", lambda: lora_config(task_type="SEQ_CLS",
                                                        target_modules=["query", "value"],
                                                        lora_bias=True)),
    "lora_bias_llama": Extra("llama", lambda: lora_config(lora_bias=True)),
    # tied embedding / lm_head
    "tied_lora": Extra("gpt2", lambda: lora_config(target_modules=["wte", "lm_head"],
                                                   ensure_weight_tying=True), embedding=True),
    "untied_lora_on_tied": Extra("gpt2", lambda: lora_config(target_modules=["wte"]),
                                 embedding=True),
    "tied_modules_to_save": Extra("gpt2", lambda: lora_config(
        target_modules=["c_attn"], fan_in_fan_out=True, modules_to_save=["wte"],
        ensure_weight_tying=True)),
    # LoRA on MoE expert parameters (next to an ordinary target)
    "target_parameters": Extra("moe", lambda: lora_config(
        target_modules=["q_proj"],
        target_parameters=["mlp.experts.gate_up_proj", "mlp.experts.down_proj"])),
    # LN tuning
    "ln_tuning": Extra("llama", lambda: LNTuningConfig(
        task_type="CAUSAL_LM", target_modules=["input_layernorm", "post_attention_layernorm",
                                               "norm"])),
    "ln_tuning_bert": Extra("bert", lambda: LNTuningConfig(task_type="SEQ_CLS",
                                                           target_modules=["LayerNorm"])),
}  # fmt: skip


def extra_base(arch: str, seed: int = 0) -> torch.nn.Module:
    """A tiny base of ``arch``: those of ``support.models.base_model``, and "moe"."""
    if arch == "moe":
        return name_base(tiny_qwen3_moe(seed), base_name(arch))
    return base_model(arch, seed)


def make_extra(kind: str, directory: Path, seed: int = 0) -> Path:
    extra = EXTRAS[kind]
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # peft's notes on tied weights and bias-less layers
        model = peft.get_peft_model(extra_base(extra.arch, seed), extra.config())
        perturb(model, seed + 1)
        model.eval()
        save_peft(model, directory, embedding=extra.embedding)
    return directory
