"""Tiny base models and real PEFT adapters for tests.

Everything is built from configs on CPU in float32 under fixed seeds, so nothing is downloaded
and every build is deterministic and fast.

``make_adapter(kind, directory)`` builds a tiny base model, wraps it with the real ``peft``
library, perturbs every trainable adapter parameter (many start as zeros or ones, which would make
an adapter a no-op and round-trip tests unable to fail) and saves it with ``save_pretrained``.

``base_model_name_or_path`` in the saved ``adapter_config.json``: peft takes it from the base
model's ``name_or_path`` and overwrites whatever the config says, so a name is given by naming the
base model. Kinds in ``UNNAMED_KINDS`` ("lora_patterns", "lora_embedding", "prompt_tuning",
"lokr", "vera") save ``null``; every other kind saves ``"tiny/<arch>"`` (see ``BASE_NAMES``).

Quirks of peft 0.21 worth knowing:

- AdaLoRA refuses to build without ``total_step``.
- LoRA targeting an embedding layer makes ``save_pretrained`` (``save_embedding_layers="auto"``)
  also write the full base embedding matrix into adapter_model.safetensors.
- BERT with ``task_type="SEQ_CLS"`` puts the classifier head into ``modules_to_save``; its full
  weights are saved alongside the LoRA factors.
- p-tuning saves the *output* of its prompt encoder as ``prompt_embeddings``, not the encoder.
- ``target_modules`` passes through a set, so its order in adapter_config.json (and hence the
  file's bytes) depends on PYTHONHASHSEED; adapter_model.safetensors is byte-for-byte stable.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import peft
import torch
from peft import (
    AdaLoraConfig,
    IA3Config,
    LoHaConfig,
    LoKrConfig,
    LoraConfig,
    PeftConfig,
    PrefixTuningConfig,
    PromptEncoderConfig,
    PromptTuningConfig,
    PromptTuningInit,
    VeraConfig,
)
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
# Large enough to move logits visibly, small enough to keep them finite and well scaled.
PERTURB_STD = 0.05

M = TypeVar("M", bound=PreTrainedModel)

# ---------------------------------------------------------------------------------------------
# Base models


def _build(cls: type[M], config: object, seed: int) -> M:
    torch.manual_seed(seed)
    model = cls(config).to(torch.float32)
    model.eval()
    return model


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    """A 2-layer Llama with grouped-query attention (4 heads, 2 kv heads)."""
    config = LlamaConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
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
    config = BertConfig(
        vocab_size=VOCAB_SIZE,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=64,
        num_labels=2,
    )
    return _build(BertForSequenceClassification, config, seed)


def save_base(model: PreTrainedModel, directory: Path) -> Path:
    """Write ``model`` as config.json + model.safetensors into ``directory`` and return it."""
    directory = Path(directory)
    model.save_pretrained(directory)
    return directory


BASE_BUILDERS: dict[str, Callable[[int], PreTrainedModel]] = {
    "llama": tiny_llama,
    "gpt2": tiny_gpt2,
    "bert": tiny_bert,
}

# ---------------------------------------------------------------------------------------------
# Adapter recipes

_ATTN = ["q_proj", "v_proj"]


@dataclass(frozen=True)
class _Recipe:
    arch: str
    config: Callable[[], PeftConfig]
    named: bool  # whether the base model carries a name_or_path peft will record


_RECIPES: dict[str, _Recipe] = {
    "lora": _Recipe(
        "llama",
        lambda: LoraConfig(task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=_ATTN),
        named=True,
    ),
    "rslora": _Recipe(
        "llama",
        lambda: LoraConfig(
            task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=_ATTN, use_rslora=True
        ),
        named=True,
    ),
    "dora": _Recipe(
        "llama",
        lambda: LoraConfig(
            task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=_ATTN, use_dora=True
        ),
        named=True,
    ),
    "lora_patterns": _Recipe(
        "llama",
        lambda: LoraConfig(
            task_type="CAUSAL_LM",
            r=4,
            lora_alpha=8,
            target_modules=["q_proj", "v_proj", "up_proj"],
            rank_pattern={"v_proj": 2, "layers.0.self_attn.q_proj": 8},
            alpha_pattern={"up_proj": 16},
        ),
        named=False,
    ),
    "lora_embedding": _Recipe(
        "llama",
        lambda: LoraConfig(
            task_type="CAUSAL_LM", r=4, lora_alpha=8, target_modules=["embed_tokens", "q_proj"]
        ),
        named=False,
    ),
    "lora_gpt2": _Recipe(
        "gpt2",
        lambda: LoraConfig(
            task_type="CAUSAL_LM",
            r=4,
            lora_alpha=8,
            target_modules=["c_attn", "c_proj"],
            fan_in_fan_out=True,  # GPT-2's Conv1D stores weights as (in, out)
        ),
        named=True,
    ),
    "lora_bert": _Recipe(
        "bert",
        lambda: LoraConfig(
            task_type="SEQ_CLS", r=4, lora_alpha=8, target_modules=["query", "value"]
        ),
        named=True,
    ),
    "ia3": _Recipe(
        "llama",
        lambda: IA3Config(
            task_type="CAUSAL_LM",
            target_modules=["k_proj", "v_proj", "down_proj"],
            feedforward_modules=["down_proj"],
        ),
        named=True,
    ),
    "prefix_tuning": _Recipe(
        "llama",
        lambda: PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
        named=True,
    ),
    "prompt_tuning": _Recipe(
        "llama",
        lambda: PromptTuningConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=4, prompt_tuning_init=PromptTuningInit.RANDOM
        ),
        named=False,
    ),
    "p_tuning": _Recipe(
        "llama",
        lambda: PromptEncoderConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=4, encoder_hidden_size=16
        ),
        named=True,
    ),
    "loha": _Recipe(
        "llama",
        lambda: LoHaConfig(task_type="CAUSAL_LM", r=4, alpha=8, target_modules=_ATTN),
        named=True,
    ),
    "lokr": _Recipe(
        "llama",
        lambda: LoKrConfig(task_type="CAUSAL_LM", r=4, alpha=8, target_modules=_ATTN),
        named=False,
    ),
    "adalora": _Recipe(
        "llama",
        lambda: AdaLoraConfig(
            task_type="CAUSAL_LM",
            init_r=6,
            target_r=4,
            lora_alpha=8,
            target_modules=_ATTN,
            total_step=100,  # required: peft raises ValueError without it
        ),
        named=True,
    ),
    "vera": _Recipe(
        "llama",
        lambda: VeraConfig(task_type="CAUSAL_LM", r=16, target_modules=_ATTN),
        named=False,
    ),
}

ALL_KINDS: tuple[str, ...] = tuple(_RECIPES)
UNNAMED_KINDS: tuple[str, ...] = tuple(k for k, r in _RECIPES.items() if not r.named)
# What each kind records as base_model_name_or_path in adapter_config.json.
BASE_NAMES: dict[str, str | None] = {
    k: f"tiny/{r.arch}" if r.named else None for k, r in _RECIPES.items()
}
KIND_ARCH: dict[str, str] = {k: r.arch for k, r in _RECIPES.items()}


@dataclass
class MadeAdapter:
    """A saved adapter plus what is needed to rebuild and exercise it."""

    kind: str
    method: str  # peft_type lowercased, e.g. "lora", "prefix_tuning"
    directory: Path
    peft_model: peft.PeftModel
    base_factory: Callable[[], PreTrainedModel]
    inputs: dict[str, torch.Tensor]
    base_model_name_or_path: str | None


def make_inputs(seed: int = 0) -> dict[str, torch.Tensor]:
    """A small batch of token ids every tiny model accepts."""
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(0, VOCAB_SIZE, (BATCH, SEQ_LEN), generator=generator)
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}


def _perturb(model: peft.PeftModel, seed: int) -> None:
    """Add noise to every trainable parameter, i.e. every adapter weight (and modules_to_save)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            if param.requires_grad:
                noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
                param.add_(noise * PERTURB_STD)


def make_adapter(kind: str, directory: Path, seed: int = 0) -> MadeAdapter:
    """Build adapter ``kind`` on a fresh tiny base and ``save_pretrained`` it to ``directory``."""
    if kind not in _RECIPES:
        raise ValueError(f"unknown adapter kind {kind!r}; expected one of {ALL_KINDS}")
    recipe = _RECIPES[kind]
    base_factory = partial(BASE_BUILDERS[recipe.arch], seed)
    base = base_factory()
    name = BASE_NAMES[kind]
    if name is not None:
        # peft copies the base model's name into the config, as for a model from the Hub.
        base.config.name_or_path = name
        base.name_or_path = name

    torch.manual_seed(seed)
    model = peft.get_peft_model(base, recipe.config())
    _perturb(model, seed + 1)
    model.eval()

    directory = Path(directory)
    # A named base would make save_embedding_layers="auto" look the name up on the Hub; passing
    # False gives the same files offline. The embedding kind keeps "auto" to show its behaviour.
    if kind == "lora_embedding":
        with warnings.catch_warnings():
            # peft announces that it also saves the base embedding matrix; that is expected.
            warnings.filterwarnings("ignore", message="Setting `save_embedding_layers`")
            model.save_pretrained(directory)
    else:
        model.save_pretrained(directory, save_embedding_layers=False)

    method = str(model.peft_config["default"].peft_type.value).lower()
    return MadeAdapter(
        kind=kind,
        method=method,
        directory=directory,
        peft_model=model,
        base_factory=base_factory,
        inputs=make_inputs(seed),
        base_model_name_or_path=name,
    )


def load_exported(made: MadeAdapter, directory: Path) -> peft.PeftModel:
    """Load the adapter in ``directory`` onto a fresh base identical to ``made``'s, in eval mode."""
    model = peft.PeftModel.from_pretrained(made.base_factory(), Path(directory))
    model.eval()
    return model


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
