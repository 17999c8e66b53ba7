"""Tiny base models for tests: Llama, GPT-2, BERT and a small convolutional model.

Everything is built from configs on CPU in float32 under fixed seeds, so nothing is downloaded
and every build is deterministic and fast. ``base_model(arch)`` is the one place that also gives
a base a name (``tiny/<arch>``), as a model from the Hub has; peft records that name in the
adapters made on it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
)

VOCAB_SIZE = 128
BATCH = 2
SEQ_LEN = 8

M = TypeVar("M", bound=PreTrainedModel)

# The sizes the tiny Llama and BERT share (GPT-2 names them differently).
_SIZES: dict[str, int] = {
    "vocab_size": VOCAB_SIZE,
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "max_position_embeddings": 64,
}


def _build(cls: type[M], config: object, seed: int) -> M:
    torch.manual_seed(seed)
    model = cls(config).to(torch.float32)
    model.eval()
    return model


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer Llama with grouped-query attention (4 heads, 2 kv heads)."""
    config = LlamaConfig(**_SIZES, num_key_value_heads=2)
    return _build(LlamaForCausalLM, config, seed)


def tiny_gpt2(seed: int = 0) -> GPT2LMHeadModel:
    """A 2-layer GPT-2; its projections are ``Conv1D`` (weights stored transposed)."""
    config = GPT2Config(
        vocab_size=VOCAB_SIZE,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=4,
        # The defaults (50256) lie outside the tiny vocabulary and make transformers warn.
        bos_token_id=VOCAB_SIZE - 1,
        eos_token_id=VOCAB_SIZE - 1,
    )
    return _build(GPT2LMHeadModel, config, seed)


def tiny_bert(seed: int = 0) -> BertForSequenceClassification:
    """A 2-layer BERT with a 2-label classification head."""
    config = BertConfig(**_SIZES, num_labels=2)
    return _build(BertForSequenceClassification, config, seed)


def tiny_qwen3_moe(seed: int = 0) -> PreTrainedModel:
    """A 2-layer Qwen3-MoE with 4 experts whose weights are 3-D parameters
    (``mlp.experts.gate_up_proj`` [4, 32, 32], ``mlp.experts.down_proj`` [4, 32, 16])."""
    from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

    config = Qwen3MoeConfig(
        **{**_SIZES, "num_attention_heads": 4},
        num_key_value_heads=2,
        head_dim=8,
        moe_intermediate_size=16,
        num_experts=4,
        num_experts_per_tok=2,
    )
    return _build(Qwen3MoeForCausalLM, config, seed)


BASE_BUILDERS: dict[str, Callable[[int], PreTrainedModel]] = {
    "llama": tiny_llama,
    "gpt2": tiny_gpt2,
    "bert": tiny_bert,
}


def base_name(arch: str) -> str:
    """The name a tiny base of ``arch`` goes by, e.g. ``tiny/llama``."""
    return f"tiny/{arch}"


def name_base(model: PreTrainedModel, name: str) -> PreTrainedModel:
    """Give ``model`` the name peft copies into an adapter's config, as for a Hub model."""
    model.config.name_or_path = name
    model.name_or_path = name
    return model


def base_model(arch: str = "llama", seed: int = 0) -> PreTrainedModel:
    """A tiny base of ``arch`` ("llama", "gpt2" or "bert"), named ``tiny/<arch>``."""
    return name_base(BASE_BUILDERS[arch](seed), base_name(arch))


def save_base(model: PreTrainedModel, directory: Path) -> Path:
    """Write ``model`` as config.json + model.safetensors into ``directory`` and return it."""
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory


def make_inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    """A small batch of token ids every tiny model accepts."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, VOCAB_SIZE, (BATCH, SEQ_LEN), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def outputs(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits for the real tokens of ``inputs``, computed in eval mode without gradients.

    Prompt-learning models prepend virtual tokens to the sequence; their positions are dropped so
    results compare directly with the plain base model's.
    """
    model.eval()
    with torch.no_grad():
        result = model(**inputs)
    tensor = getattr(result, "logits", None)
    if tensor is None:
        tensor = result.last_hidden_state
    if tensor.dim() == 3:
        tensor = tensor[:, -inputs["input_ids"].shape[1] :, :]
    return tensor


class TinyConv(nn.Module):
    """Conv2d 3x3, Conv2d 1x1 and Conv1d layers, with a linear head.

    The transformers models above have no convolutions that PEFT adapts as ``nn.Conv*``.
    """

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
