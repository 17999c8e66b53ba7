"""LoHa (Hadamard product) and LoKr (Kronecker product) deltas, scaled by alpha / r."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import torch

from registry.formats.matching import pattern_value
from registry.ops.updates import WeightUpdate

LOHA_SUFFIXES = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")
LOKR_SUFFIXES = (
    "lokr_w1",
    "lokr_w1_a",
    "lokr_w1_b",
    "lokr_w2",
    "lokr_w2_a",
    "lokr_w2_b",
    "lokr_t2",
)


def _scaling(config: Mapping[str, Any], module: str, rank: int) -> float:
    found_r = pattern_value(config.get("rank_pattern"), module)
    found_alpha = pattern_value(config.get("alpha_pattern"), module)
    r = int(found_r[1]) if found_r else int(config.get("r", rank))
    alpha = float(found_alpha[1]) if found_alpha else float(config.get("alpha", r))
    return alpha / r if r else 0.0


def _cp(t: torch.Tensor, wa: torch.Tensor, wb: torch.Tensor) -> torch.Tensor:
    # Tucker (CP) form for convolutions: core [r, r, *k] with factors [r, out] and [r, in].
    return torch.einsum("i j ..., i p, j r -> p r ...", t, wa, wb)


def loha_delta(
    parts: Mapping[str, torch.Tensor], scaling: float, shape: torch.Size | None
) -> torch.Tensor:
    p = {k: v.to(torch.float32) for k, v in parts.items()}
    if "hada_t1" in p:
        w1 = _cp(p["hada_t1"], p["hada_w1_a"], p["hada_w1_b"])
        w2 = _cp(p["hada_t2"], p["hada_w2_a"], p["hada_w2_b"])
    else:
        w1 = p["hada_w1_a"] @ p["hada_w1_b"]
        w2 = p["hada_w2_a"] @ p["hada_w2_b"]
    delta = w1 * w2 * scaling
    return delta.reshape(shape) if shape is not None else delta


def lokr_delta(
    parts: Mapping[str, torch.Tensor], scaling: float, shape: torch.Size | None
) -> torch.Tensor:
    p = {k: v.to(torch.float32) for k, v in parts.items()}
    w1 = p["lokr_w1"] if "lokr_w1" in p else p["lokr_w1_a"] @ p["lokr_w1_b"]
    if "lokr_w2" in p:
        w2 = p["lokr_w2"]
    elif "lokr_t2" in p:
        w2 = torch.einsum(
            "i j ..., i p, j r -> p r ...", p["lokr_t2"], p["lokr_w2_a"], p["lokr_w2_b"]
        )
    else:
        w2 = p["lokr_w2_a"] @ p["lokr_w2_b"]
    if w2.dim() > w1.dim():
        w1 = w1.reshape(*w1.shape, *([1] * (w2.dim() - w1.dim())))
    delta = torch.kron(w1, w2) * scaling
    return delta.reshape(shape) if shape is not None else delta


def _rank(parts: Mapping[str, torch.Tensor]) -> int:
    for key in ("hada_w1_b", "lokr_w2_b", "lokr_w1_b"):
        if key in parts:
            return int(parts[key].shape[0])
    return 0


def lycoris_scaling(
    config: Mapping[str, Any], module: str, parts: Mapping[str, torch.Tensor]
) -> float:
    """alpha / r for one LoHa or LoKr module, with rank and alpha patterns applied."""
    return _scaling(config, module, _rank(parts))


def _updates(
    delta: Callable[[Mapping[str, torch.Tensor], float, torch.Size | None], torch.Tensor],
    config: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, torch.Tensor]],
    shapes: Mapping[str, torch.Size] | None,
) -> list[WeightUpdate]:
    updates = []
    for module, parts in sorted(groups.items()):
        target = f"{module}.weight"
        value = delta(parts, lycoris_scaling(config, module, parts), (shapes or {}).get(target))
        updates.append(WeightUpdate(target, "add", value))
    return updates


def loha_updates(
    config: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, torch.Tensor]],
    shapes: Mapping[str, torch.Size] | None = None,
) -> list[WeightUpdate]:
    return _updates(loha_delta, config, groups, shapes)


def lokr_updates(
    config: Mapping[str, Any],
    groups: Mapping[str, Mapping[str, torch.Tensor]],
    shapes: Mapping[str, torch.Size] | None = None,
) -> list[WeightUpdate]:
    return _updates(lokr_delta, config, groups, shapes)
