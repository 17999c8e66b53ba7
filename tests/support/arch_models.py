"""Tiny bases of several architectures for the native-vs-PEFT parity test, each with its
inputs and the modules adapters target there.

GPT-2 (Conv1D projections stored [in, out]), BERT and RoBERTa sequence classifiers (their head
in ``modules_to_save``), T5 (encoder-decoder), ViT and Mixtral (transformers 5 renames and fuses
their modules, see ``renamed_models``) and the tiny Llama. All built from configs under fixed
seeds, in float32, in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import (
    PreTrainedModel,
    RobertaConfig,
    RobertaForSequenceClassification,
    T5Config,
    T5ForConditionalGeneration,
)

from support.models import VOCAB_SIZE, make_inputs, name_base, tiny_bert, tiny_gpt2, tiny_llama
from support.renamed_models import mixtral_inputs, tiny_mixtral, tiny_vit, vit_inputs


def tiny_roberta(seed: int = 0) -> RobertaForSequenceClassification:
    torch.manual_seed(seed)
    config = RobertaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        num_labels=2,
    )
    return RobertaForSequenceClassification(config).eval()


def tiny_t5(seed: int = 0) -> T5ForConditionalGeneration:
    torch.manual_seed(seed)
    config = T5Config(
        vocab_size=VOCAB_SIZE,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        decoder_start_token_id=0,
    )
    return T5ForConditionalGeneration(config).eval()


def _t5_inputs() -> dict[str, torch.Tensor]:
    inputs = make_inputs()
    inputs["decoder_input_ids"] = inputs["input_ids"][:, :4]
    return inputs


@dataclass(frozen=True)
class Arch:
    build: Callable[[], PreTrainedModel]
    inputs: Callable[[], dict[str, torch.Tensor]]
    attention: list[str]  # modules every method targets
    feedforward: str  # an MLP projection (IA3 scales its input)
    settings: dict[str, Any] = field(default_factory=dict)  # extra config, e.g. task_type


ARCHS: dict[str, Arch] = {
    "llama": Arch(tiny_llama, make_inputs, ["q_proj", "v_proj"], "down_proj"),
    "gpt2": Arch(tiny_gpt2, make_inputs, ["c_attn"], "c_proj", {"fan_in_fan_out": True}),
    "bert": Arch(
        tiny_bert, make_inputs, ["query", "value"], "output.dense", {"task_type": "SEQ_CLS"}
    ),
    "roberta": Arch(
        tiny_roberta, make_inputs, ["query", "value"], "output.dense", {"task_type": "SEQ_CLS"}
    ),
    "t5": Arch(tiny_t5, _t5_inputs, ["q", "v"], "wo"),
    "vit": Arch(
        tiny_vit, vit_inputs, ["q_proj", "v_proj"], "fc2", {"modules_to_save": ["classifier"]}
    ),
    "mixtral": Arch(tiny_mixtral, mixtral_inputs, ["q_proj", "v_proj"], "o_proj"),
}


def named(arch: str) -> PreTrainedModel:
    """A fresh base of ``arch`` named ``tiny/<arch>`` (the name peft records)."""
    return name_base(ARCHS[arch].build(), f"tiny/{arch}")
