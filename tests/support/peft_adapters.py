"""Real PEFT adapters for tests, made with the ``peft`` library on the tiny bases of
``support.models``.

``make_adapter(kind, directory)`` builds a tiny base model, wraps it with the real ``peft``
library, perturbs every trainable adapter parameter (many start as zeros or ones, which would make
an adapter a no-op and round-trip tests unable to fail) and saves it with ``save_pretrained``.
``perturb`` and ``save_peft`` are those two steps, for adapters built elsewhere (see
``support.ops_adapters``).

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
from typing import Any

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
from torch import nn
from transformers import PreTrainedModel

from support.models import BASE_BUILDERS, base_name, make_inputs, name_base

# Large enough to move logits visibly, small enough to keep them finite and well scaled.
PERTURB_STD = 0.05

# ---------------------------------------------------------------------------------------------
# Adapter recipes

ATTN = ["q_proj", "v_proj"]


def lora_config(**overrides: Any) -> LoraConfig:
    """A causal-LM LoRA config: r=4, alpha=8 on the attention's q and v, unless overridden."""
    settings: dict[str, Any] = {
        "task_type": "CAUSAL_LM",
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ATTN,
    }
    settings.update(overrides)
    return LoraConfig(**settings)


@dataclass(frozen=True)
class Recipe:
    """How ``make_adapter`` builds one kind: on which base, with which peft config."""

    arch: str
    config: Callable[[], PeftConfig]
    named: bool  # whether the base model carries a name_or_path peft will record


RECIPES: dict[str, Recipe] = {
    "lora": Recipe("llama", lambda: lora_config(), named=True),
    "rslora": Recipe("llama", lambda: lora_config(use_rslora=True), named=True),
    "dora": Recipe("llama", lambda: lora_config(use_dora=True), named=True),
    "lora_patterns": Recipe(
        "llama",
        lambda: lora_config(
            target_modules=["q_proj", "v_proj", "up_proj"],
            rank_pattern={"v_proj": 2, "layers.0.self_attn.q_proj": 8},
            alpha_pattern={"up_proj": 16},
        ),
        named=False,
    ),
    "lora_embedding": Recipe(
        "llama", lambda: lora_config(target_modules=["embed_tokens", "q_proj"]), named=False
    ),
    "lora_gpt2": Recipe(
        "gpt2",
        # GPT-2's Conv1D stores weights as (in, out)
        lambda: lora_config(target_modules=["c_attn", "c_proj"], fan_in_fan_out=True),
        named=True,
    ),
    "lora_bert": Recipe(
        "bert",
        lambda: lora_config(task_type="SEQ_CLS", target_modules=["query", "value"]),
        named=True,
    ),
    "ia3": Recipe(
        "llama",
        lambda: IA3Config(
            task_type="CAUSAL_LM",
            target_modules=["k_proj", "v_proj", "down_proj"],
            feedforward_modules=["down_proj"],
        ),
        named=True,
    ),
    "prefix_tuning": Recipe(
        "llama",
        lambda: PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
        named=True,
    ),
    "prompt_tuning": Recipe(
        "llama",
        lambda: PromptTuningConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=4, prompt_tuning_init=PromptTuningInit.RANDOM
        ),
        named=False,
    ),
    "p_tuning": Recipe(
        "llama",
        lambda: PromptEncoderConfig(
            task_type="CAUSAL_LM", num_virtual_tokens=4, encoder_hidden_size=16
        ),
        named=True,
    ),
    "loha": Recipe(
        "llama",
        lambda: LoHaConfig(task_type="CAUSAL_LM", r=4, alpha=8, target_modules=ATTN),
        named=True,
    ),
    "lokr": Recipe(
        "llama",
        lambda: LoKrConfig(task_type="CAUSAL_LM", r=4, alpha=8, target_modules=ATTN),
        named=False,
    ),
    "adalora": Recipe(
        "llama",
        lambda: AdaLoraConfig(
            task_type="CAUSAL_LM",
            init_r=6,
            target_r=4,
            lora_alpha=8,
            target_modules=ATTN,
            total_step=100,  # required: peft raises ValueError without it
        ),
        named=True,
    ),
    "vera": Recipe(
        "llama",
        lambda: VeraConfig(task_type="CAUSAL_LM", r=16, target_modules=ATTN),
        named=False,
    ),
}

ALL_KINDS: tuple[str, ...] = tuple(RECIPES)
UNNAMED_KINDS: tuple[str, ...] = tuple(k for k, r in RECIPES.items() if not r.named)
# What each kind records as base_model_name_or_path in adapter_config.json.
BASE_NAMES: dict[str, str | None] = {
    k: base_name(r.arch) if r.named else None for k, r in RECIPES.items()
}
KIND_ARCH: dict[str, str] = {k: r.arch for k, r in RECIPES.items()}


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


def perturb(model: nn.Module, seed: int) -> None:
    """Add noise to every trainable parameter, i.e. every adapter weight (and modules_to_save)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            if param.requires_grad:
                noise = torch.randn(param.shape, generator=generator, dtype=param.dtype)
                param.add_(noise * PERTURB_STD)


def save_peft(model: peft.PeftModel, directory: Path, *, embedding: bool = False) -> Path:
    """``save_pretrained`` ``model`` into ``directory`` and return it.

    A named base would make ``save_embedding_layers="auto"`` look the name up on the Hub;
    passing False gives the same files offline. An adapter on an embedding layer (``embedding``)
    keeps "auto", which finds it among the targets and also saves the base embedding matrix.
    """
    directory = Path(directory)
    if embedding:
        with warnings.catch_warnings():
            # peft announces that it also saves the base embedding matrix; that is expected.
            warnings.filterwarnings("ignore", message="Setting `save_embedding_layers`")
            model.save_pretrained(directory)
    else:
        model.save_pretrained(directory, save_embedding_layers=False)
    return directory


def make_adapter(kind: str, directory: Path, seed: int = 0) -> MadeAdapter:
    """Build adapter ``kind`` on a fresh tiny base and ``save_pretrained`` it to ``directory``."""
    if kind not in RECIPES:
        raise ValueError(f"unknown adapter kind {kind!r}; expected one of {ALL_KINDS}")
    recipe = RECIPES[kind]
    base_factory = partial(BASE_BUILDERS[recipe.arch], seed)
    base = base_factory()
    name = BASE_NAMES[kind]
    if name is not None:
        name_base(base, name)

    torch.manual_seed(seed)
    model = peft.get_peft_model(base, recipe.config())
    perturb(model, seed + 1)
    model.eval()
    directory = save_peft(model, directory, embedding=kind == "lora_embedding")

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
