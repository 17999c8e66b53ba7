"""How an adapter changes one base parameter, and applying that change.

Every foldable adapter method reduces to a list of ``WeightUpdate``: add a
delta (LoRA, LoHa, LoKr), rescale with DoRA's magnitude, scale rows or columns
(IA3), or replace a tensor outright (``modules_to_save``). The math is done in
float32 and the result cast back to the parameter's dtype, as PEFT does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

UpdateKind = Literal["add", "dora", "scale", "replace"]
# Where a weight keeps its output dimension, which decides DoRA's norm axis:
# "linear" [out, in]; "linear_t" [in, out] (GPT-2 Conv1D); "embedding" [vocab, dim]
# whose DoRA norm runs over the vocabulary; "conv" [out, in, *kernel].
Layout = Literal["linear", "linear_t", "embedding", "conv"]


@dataclass(frozen=True)
class WeightUpdate:
    target: str  # base parameter name, e.g. "model.layers.0.self_attn.q_proj.weight"
    kind: UpdateKind
    value: torch.Tensor  # delta (add, dora), broadcastable factor (scale), new tensor (replace)
    layout: Layout = "linear"
    magnitude: torch.Tensor | None = None  # DoRA only
    optional: bool = False  # applies only if the base has the parameter (IA3 bias scaling)

    def expected_shape(self) -> tuple[int, ...] | None:
        """The parameter shape this update needs, where it implies one."""
        if self.kind in ("add", "dora", "replace"):
            return tuple(self.value.shape)
        return None


def apply_update(weight: torch.Tensor, update: WeightUpdate) -> torch.Tensor:
    """The new value of ``weight`` (not modified in place)."""
    dtype = weight.dtype
    if update.kind == "replace":
        return update.value.to(dtype=dtype, device=weight.device).clone()
    base = weight.detach().to(torch.float32)
    value = update.value.to(dtype=torch.float32, device=weight.device)
    result: torch.Tensor
    if update.kind == "add":
        result = base + value
    elif update.kind == "scale":
        result = base * value
    else:
        assert update.magnitude is not None
        magnitude = update.magnitude.to(dtype=torch.float32, device=weight.device)
        combined = base + value
        result = _dora_factor(combined, magnitude, update.layout) * combined
    return result.to(dtype)


def _dora_factor(combined: torch.Tensor, magnitude: torch.Tensor, layout: Layout) -> torch.Tensor:
    # DoRA: W' = m / ||W + dW|| * (W + dW), the norm taken per output unit.
    factor: torch.Tensor
    if layout == "linear":
        factor = (magnitude / torch.linalg.norm(combined, dim=1)).view(-1, 1)
    elif layout in ("linear_t", "embedding"):
        factor = (magnitude / torch.linalg.norm(combined, dim=0)).view(1, -1)
    else:
        norm = combined.norm(p=2, dim=tuple(range(1, combined.dim())))
        factor = (magnitude.reshape(-1) / norm).view((-1,) + (1,) * (combined.dim() - 1))
    return factor
