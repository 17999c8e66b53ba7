"""LoRA deltas as PEFT computes them: scaling, rank/alpha patterns, rsLoRA, DoRA,
fan_in_fan_out (GPT-2 Conv1D), embedding and convolution layers."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from registry.formats.matching import pattern_value
from registry.ops.updates import Layout, LowRankProduct, WeightUpdate

LORA_SUFFIXES = (
    "lora_A.weight",
    "lora_B.weight",
    "lora_B.bias",
    "lora_embedding_A",
    "lora_embedding_B",
    "lora_magnitude_vector",
)


@dataclass(frozen=True)
class LoraFactors:
    """One module's LoRA factors and the scale PEFT applies to ``B @ A``."""

    module: str
    a: torch.Tensor  # [r, in] (conv: [r, in, *k]; embedding: [r, vocab])
    b: torch.Tensor  # [out, r] (conv: [out, r, 1, ...]; embedding: [dim, r])
    scaling: float
    layout: Layout
    magnitude: torch.Tensor | None = None
    bias: torch.Tensor | None = None  # lora_bias: a bias delta on lora_B

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])


def module_scaling(config: Mapping[str, Any], module: str, rank: int) -> float:
    """alpha / r, or alpha / sqrt(r) with rsLoRA; alpha from ``alpha_pattern`` first."""
    found = pattern_value(config.get("alpha_pattern"), module)
    alpha = float(found[1]) if found else float(config.get("lora_alpha", 8))
    if rank == 0:
        return 0.0
    if config.get("use_rslora"):
        return alpha / math.sqrt(rank)
    return alpha / rank


def lora_factors(
    config: Mapping[str, Any], module: str, parts: Mapping[str, torch.Tensor]
) -> LoraFactors:
    if "lora_embedding_A" in parts:
        a, b, layout = parts["lora_embedding_A"], parts["lora_embedding_B"], "embedding"
    else:
        a, b = parts["lora_A.weight"], parts["lora_B.weight"]
        transposed = bool(config.get("fan_in_fan_out"))
        layout = "conv" if a.dim() > 2 else "linear_t" if transposed else "linear"
    rank = int(a.shape[0])
    return LoraFactors(
        module=module,
        a=a,
        b=b,
        scaling=module_scaling(config, module, rank),
        layout=layout,  # type: ignore[arg-type]
        magnitude=parts.get("lora_magnitude_vector"),
        bias=parts.get("lora_B.bias"),
    )


def lora_delta(factors: LoraFactors) -> torch.Tensor:
    """The weight delta in the base parameter's own layout, in float32."""
    a = factors.a.to(torch.float32)
    # Scaling the small factor rather than the product saves a pass over a dense matrix.
    b = factors.b.to(torch.float32) * factors.scaling
    if factors.layout == "conv":
        # B is a 1x1 conv over A's output channels: contract the rank dimension.
        return torch.einsum("or,ri...->oi...", b.flatten(1), a)
    product = b @ a
    if factors.layout in ("linear_t", "embedding"):
        product = product.T
    return product


def lora_product(factors: LoraFactors) -> torch.Tensor | LowRankProduct:
    """The delta as ``lora_delta`` gives it, left factored where the layout allows."""
    if factors.layout == "conv":
        return lora_delta(factors)
    b = factors.b.to(torch.float32) * factors.scaling
    return LowRankProduct(b, factors.a.to(torch.float32), factors.layout != "linear")


def lora_updates(
    config: Mapping[str, Any], groups: Mapping[str, Mapping[str, torch.Tensor]]
) -> list[WeightUpdate]:
    updates: list[WeightUpdate] = []
    for module, parts in sorted(groups.items()):
        factors = lora_factors(config, module, parts)
        delta = lora_product(factors)
        if factors.magnitude is not None:
            updates.append(
                WeightUpdate(f"{module}.weight", "dora", delta, factors.layout, factors.magnitude)
            )
        else:
            updates.append(WeightUpdate(f"{module}.weight", "add", delta, factors.layout))
        if factors.bias is not None:
            updates.append(WeightUpdate(f"{module}.bias", "add", factors.bias * factors.scaling))
    return updates
