"""Small valid adapters written by hand: no model, no peft, a few milliseconds each.

``adapter_files``/``write_adapter`` need neither torch nor peft. Their shapes follow the tiny
Llama of support/models.py (hidden 32, kv 16, mlp 64, two layers) and what peft 0.21 saves for
it, so every adapter here passes ``read_adapter_dir``. Tests that break one thing at a time
(hostile input, corruption, fuzzing) start from these bytes.

``write_lora`` writes a LoRA of any rank, modules and width through the registry's own writer
(torch, imported when called); the lifecycle, gc and stress tests use it for many distinct
adapters.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

HIDDEN, KV, INTER, LAYERS = 32, 16, 64, 2
BASE = "tiny/llama"
_OUT = {"q_proj": HIDDEN, "v_proj": KV, "k_proj": KV, "down_proj": HIDDEN}
_IN = {"q_proj": HIDDEN, "v_proj": HIDDEN, "k_proj": HIDDEN, "down_proj": INTER}
_PEFT_COMMON = {"base_model_name_or_path": BASE, "inference_mode": True, "task_type": "CAUSAL_LM"}


def _module(layer: int, name: str) -> str:
    group = "mlp" if name == "down_proj" else "self_attn"
    return f"base_model.model.model.layers.{layer}.{group}.{name}"


def _lora() -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    config = {**_PEFT_COMMON, "peft_type": "LORA", "r": 4, "lora_alpha": 8, "bias": "none"}
    config["target_modules"] = ["q_proj", "v_proj"]
    shapes = {}
    for layer in range(LAYERS):
        for name in ("q_proj", "v_proj"):
            shapes[f"{_module(layer, name)}.lora_A.weight"] = (4, _IN[name])
            shapes[f"{_module(layer, name)}.lora_B.weight"] = (_OUT[name], 4)
    return config, shapes


def _ia3() -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    config = {**_PEFT_COMMON, "peft_type": "IA3"}
    config["target_modules"] = ["down_proj", "k_proj", "v_proj"]
    config["feedforward_modules"] = ["down_proj"]
    shapes = {}
    for layer in range(LAYERS):
        shapes[f"{_module(layer, 'down_proj')}.ia3_l"] = (1, INTER)
        for name in ("k_proj", "v_proj"):
            shapes[f"{_module(layer, name)}.ia3_l"] = (KV, 1)
    return config, shapes


def _loha() -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    config = {**_PEFT_COMMON, "peft_type": "LOHA", "r": 4, "alpha": 8}
    config["target_modules"] = ["q_proj", "v_proj"]
    shapes = {}
    for layer in range(LAYERS):
        for name in ("q_proj", "v_proj"):
            for w in ("w1", "w2"):
                shapes[f"{_module(layer, name)}.hada_{w}_a"] = (_OUT[name], 4)
                shapes[f"{_module(layer, name)}.hada_{w}_b"] = (4, _IN[name])
    return config, shapes


def _prompt_tuning() -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    config = {
        **_PEFT_COMMON,
        "peft_type": "PROMPT_TUNING",
        "num_virtual_tokens": 4,
        "token_dim": HIDDEN,
        "num_transformer_submodules": 1,
        "num_attention_heads": 4,
        "num_layers": LAYERS,
        "prompt_tuning_init": "RANDOM",
    }
    return config, {"prompt_embeddings": (4, HIDDEN)}


def _prefix_tuning() -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    config = {
        **_PEFT_COMMON,
        "peft_type": "PREFIX_TUNING",
        "num_virtual_tokens": 4,
        "token_dim": KV,
        "num_transformer_submodules": 1,
        "num_attention_heads": 2,
        "num_layers": LAYERS,
    }
    return config, {"prompt_embeddings": (4, LAYERS * 2 * KV)}


def _bottleneck() -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    architecture = {
        "mh_adapter": True,
        "output_adapter": True,
        "reduction_factor": 8,
        "non_linearity": "swish",
        "original_ln_after": True,
        "residual_before_ln": True,
        "leave_out": [],
    }
    config = {
        "config": architecture,
        "hidden_size": HIDDEN,
        "model_class": "BertAdapterModel",
        "model_name": "bert-base-uncased",
        "model_type": "bert",
        "name": "sst-2",
        "version": "adapters.1.2.0",
    }
    shapes: dict[str, tuple[int, ...]] = {}
    down = HIDDEN // 8
    for layer in range(LAYERS):
        for location in ("attention.output", "output"):
            prefix = f"bert.encoder.layer.{layer}.{location}.adapters.sst-2"
            shapes[f"{prefix}.adapter_down.0.weight"] = (down, HIDDEN)
            shapes[f"{prefix}.adapter_down.0.bias"] = (down,)
            shapes[f"{prefix}.adapter_up.weight"] = (HIDDEN, down)
            shapes[f"{prefix}.adapter_up.bias"] = (HIDDEN,)
    return config, shapes


def _hub_document(architecture: dict[str, Any]) -> dict[str, Any]:
    # What the adapters library's save_adapter writes: model facts beside the architecture.
    return {
        "config": architecture,
        "hidden_size": HIDDEN,
        "model_class": "BertAdapterModel",
        "model_name": "bert-base-uncased",
        "model_type": "bert",
        "name": "sst-2",
        "version": "adapters.1.2.0",
    }


def _hub_lora_config(**changes: Any) -> dict[str, Any]:
    # LoRAConfig().to_dict() of adapters 1.2 (IA3Config is the same class, other defaults).
    architecture = {
        "alpha": 8,
        "architecture": "lora",
        "attn_matrices": ["q", "v"],
        "composition_mode": "add",
        "dropout": 0.0,
        "dtype": None,
        "init_weights": "lora",
        "init_weights_seed": None,
        "intermediate_lora": False,
        "leave_out": [],
        "output_lora": False,
        "r": 8,
        "selfattn_lora": True,
        "use_gating": False,
        "vera_b": None,
        "vera_d": None,
    }
    architecture.update(changes)
    return _hub_document(architecture)


def _hub_lora() -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(LAYERS):
        for module in ("query", "value"):
            key = f"bert.encoder.layer.{layer}.attention.self.{module}.loras.sst-2"
            shapes[f"{key}.lora_A"] = (8, HIDDEN)
            shapes[f"{key}.lora_B"] = (HIDDEN, 8)
    return _hub_lora_config(), shapes


def _hub_ia3() -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    config = _hub_lora_config(
        alpha=1,
        attn_matrices=["k", "v"],
        composition_mode="scale",
        init_weights="ia3",
        intermediate_lora=True,
        r=1,
    )
    shapes: dict[str, tuple[int, ...]] = {}
    for layer in range(LAYERS):
        for module in ("attention.self.key", "attention.self.value", "intermediate.dense"):
            out = INTER if module == "intermediate.dense" else HIDDEN
            shapes[f"bert.encoder.layer.{layer}.{module}.loras.sst-2.lora_B"] = (out, 1)
    return config, shapes


def _hub_prefix() -> tuple[dict[str, Any], dict[str, tuple[int, ...]]]:
    # PrefixTuningConfig().to_dict() with a short prefix and small bottleneck.
    architecture = {
        "architecture": "prefix_tuning",
        "bottleneck_size": 16,
        "cross_prefix": True,
        "dropout": 0.0,
        "encoder_prefix": True,
        "flat": False,
        "init_weights_seed": None,
        "leave_out": [],
        "non_linearity": "tanh",
        "prefix_length": 5,
        "shared_gating": True,
        "use_gating": False,
    }
    key = "bert.prefix_tuning.prefix_tunings.sst-2.self_prefix"
    shapes = {
        f"{key}.wte.weight": (5, HIDDEN),
        f"{key}.control_trans.0.weight": (16, HIDDEN),
        f"{key}.control_trans.0.bias": (16,),
        f"{key}.control_trans.2.weight": (LAYERS * 2 * HIDDEN, 16),
        f"{key}.control_trans.2.bias": (LAYERS * 2 * HIDDEN,),
    }
    return _hub_document(architecture), shapes


KINDS = {
    "lora": _lora,
    "ia3": _ia3,
    "loha": _loha,
    "prompt_tuning": _prompt_tuning,
    "prefix_tuning": _prefix_tuning,
    "bottleneck": _bottleneck,
    "adapterhub_lora": _hub_lora,
    "adapterhub_ia3": _hub_ia3,
    "adapterhub_prefix_tuning": _hub_prefix,
}
_HUB_KINDS = ("adapterhub", "bottleneck")
WEIGHTS_FILE = {kind: "adapter.safetensors" for kind in KINDS if kind.startswith(_HUB_KINDS)}


def safetensors_bytes(
    tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None
) -> bytes:
    """A safetensors file as the library writes it (tensors in name order, header padded)."""
    header: dict[str, Any] = {}
    chunks: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        shape = list(tensors[name].shape)
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        chunks.append(raw)
        offset += len(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def adapter_files(kind: str = "lora", seed: int = 0) -> dict[str, bytes]:
    """File name -> bytes of a valid adapter of ``kind``."""
    config, shapes = KINDS[kind]()
    rng = np.random.default_rng(seed)
    tensors = {
        name: (rng.standard_normal(shape) * 0.05).astype("<f4") for name, shape in shapes.items()
    }
    weights = WEIGHTS_FILE.get(kind, "adapter_model.safetensors")
    return {
        "adapter_config.json": json.dumps(config, indent=2, sort_keys=True).encode(),
        weights: safetensors_bytes(tensors, {"format": "pt"}),
    }


def write_adapter(directory: Path, kind: str = "lora", seed: int = 0, card: bool = False) -> Path:
    """Write a valid adapter of ``kind`` into ``directory`` (created) and return it."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in adapter_files(kind, seed).items():
        (directory / name).write_bytes(data)
    if card:
        (directory / "README.md").write_text(f"# {kind} adapter\n\nA test adapter.\n")
    return directory


def write_lora(
    directory: Path,
    seed: int,
    *,
    r: int = 4,
    alpha: int = 8,
    modules: Sequence[str] = ("q_proj", "v_proj"),
    hidden: int = 16,
    base: str = BASE,
    extra_config: dict[str, Any] | None = None,
) -> Path:
    """A valid PEFT LoRA directory with random factors, without building a model."""
    import torch

    from registry.formats import write_peft_adapter

    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for layer in range(LAYERS):
        for module in modules:
            key = f"base_model.model.model.layers.{layer}.self_attn.{module}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(r, hidden, generator=generator)
            tensors[f"{key}.lora_B.weight"] = torch.randn(hidden, r, generator=generator)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base,
        "revision": None,
        "r": r,
        "lora_alpha": alpha,
        "target_modules": sorted(modules),
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "inference_mode": True,
        **(extra_config or {}),
    }
    write_peft_adapter(directory, config, tensors)
    return directory


def tiny_model() -> Any:
    """A bare torch module with the tiny Llama's attention projections, for loading ``lora``.

    Enough for ``Registry.load`` to bind and apply the adapter, without transformers.
    """
    from torch import nn

    def node(**children: nn.Module) -> nn.Module:
        module = nn.Module()
        for name, child in children.items():
            module.add_module(name, child)
        return module

    def layer() -> nn.Module:
        q_proj = nn.Linear(HIDDEN, HIDDEN, bias=False)
        v_proj = nn.Linear(HIDDEN, KV, bias=False)
        return node(self_attn=node(q_proj=q_proj, v_proj=v_proj))

    return node(model=node(layers=nn.ModuleList([layer() for _ in range(LAYERS)])))


# Single-file LoRAs of image-generation tools, written as diffusers' save_lora_weights and kohya's
# sd-scripts write them (neither library is installed), for a tiny UNet and text encoder.
UNET_WEIGHTS: dict[str, tuple[int, ...]] = {
    "down_blocks.0.attentions.0.proj_in.weight": (HIDDEN, HIDDEN, 1, 1),
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight": (HIDDEN, HIDDEN),
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_k.weight": (HIDDEN, HIDDEN),
    "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_v.weight": (HIDDEN, HIDDEN),
    "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": (HIDDEN, KV),
    "down_blocks.0.resnets.0.conv1.weight": (HIDDEN, HIDDEN, 3, 3),
}
TEXT_ENCODER_WEIGHTS: dict[str, tuple[int, ...]] = {
    "text_model.encoder.layers.0.self_attn.q_proj.weight": (KV, KV),
    "text_model.encoder.layers.0.self_attn.v_proj.weight": (KV, KV),
}
KOHYA_METADATA = {
    "ss_network_module": "networks.lora",
    "ss_network_dim": "4",
    "ss_network_alpha": "2.0",
    "ss_sd_model_name": "tiny/sd",
    "ss_tag_frequency": json.dumps({"a": {"cat": 3}}),
}


def _lora_factors(shape: tuple[int, ...], rank: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    if len(shape) == 4:
        return (rank, shape[1], *shape[2:]), (shape[0], rank, 1, 1)
    return (rank, shape[1]), (shape[0], rank)


def single_file_lora(kind: str, rank: int = 4, seed: int = 0) -> bytes:
    """A ``diffusers`` (PEFT key names), ``diffusers-old`` or ``kohya`` LoRA file's bytes."""
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray] = {}
    for component, weights in (("unet", UNET_WEIGHTS), ("text_encoder", TEXT_ENCODER_WEIGHTS)):
        for name, shape in weights.items():
            module = name[: -len(".weight")]
            down, up = _lora_factors(shape, rank)
            if kind == "kohya":
                prefix = {"unet": "lora_unet", "text_encoder": "lora_te"}[component]
                key = f"{prefix}_{module.replace('.', '_')}"
                parts = (f"{key}.lora_down.weight", f"{key}.lora_up.weight")
                tensors[f"{key}.alpha"] = np.array(2.0, dtype="<f4")
            elif kind == "diffusers-old":
                parts = (
                    f"{component}.{module}.lora.down.weight",
                    f"{component}.{module}.lora.up.weight",
                )
            else:
                parts = (
                    f"{component}.{module}.lora_A.weight",
                    f"{component}.{module}.lora_B.weight",
                )
            tensors[parts[0]] = (rng.standard_normal(down) * 0.05).astype("<f4")
            tensors[parts[1]] = (rng.standard_normal(up) * 0.05).astype("<f4")
    metadata = KOHYA_METADATA if kind == "kohya" else {"format": "pt"}
    return safetensors_bytes(tensors, metadata)


def write_diffusion_base(directory: Path, *, pipeline: bool = True, hidden: int = HIDDEN) -> Path:
    """A base with the tiny UNet (and text encoder): a pipeline directory or a UNet's own."""

    def zeros(weights: dict[str, tuple[int, ...]]) -> bytes:
        return safetensors_bytes(
            {
                name: np.zeros(tuple(hidden if d == HIDDEN else d for d in shape), "<f4")
                for name, shape in weights.items()
            }
        )

    unet = directory / "unet" if pipeline else directory
    unet.mkdir(parents=True, exist_ok=True)
    (unet / "diffusion_pytorch_model.safetensors").write_bytes(zeros(UNET_WEIGHTS))
    if pipeline:
        (directory / "text_encoder").mkdir()
        (directory / "text_encoder" / "model.safetensors").write_bytes(zeros(TEXT_ENCODER_WEIGHTS))
    return directory
