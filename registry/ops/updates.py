"""How an adapter changes one base parameter, and applying that change.

Every foldable adapter method reduces to a list of ``WeightUpdate``: add a
delta (LoRA, LoHa, LoKr), rescale with DoRA's magnitude, scale rows or columns
(IA3), replace a tensor outright (``modules_to_save``, LN tuning) or some of its rows
(trainable tokens). The math is done in
float32 and the result cast back to the parameter's dtype, as PEFT does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from registry.errors import BaseModelMismatchError

UpdateKind = Literal["add", "dora", "scale", "replace", "rows", "rotate"]
# Where a weight keeps its output dimension, which decides DoRA's norm axis:
# "linear" [out, in]; "linear_t" [in, out] (GPT-2 Conv1D); "embedding" [vocab, dim]
# whose DoRA norm runs over the vocabulary; "conv" [out, in, *kernel].
Layout = Literal["linear", "linear_t", "embedding", "conv"]


@dataclass(frozen=True)
class LowRankProduct:
    """A delta kept as its factors: ``b @ a``, or its transpose when ``transpose``.

    Adding it to a weight is one ``addmm`` with no dense delta in memory, which is what
    makes a merge into a large checkpoint cost little more than copying it.
    """

    b: torch.Tensor  # [out, r]
    a: torch.Tensor  # [r, in]
    transpose: bool = False

    @property
    def shape(self) -> torch.Size:
        rows, cols = int(self.b.shape[0]), int(self.a.shape[1])
        return torch.Size((cols, rows) if self.transpose else (rows, cols))

    def to(
        self, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> torch.Tensor:
        """The dense delta."""
        product = self.b.to(dtype=dtype, device=device) @ self.a.to(dtype=dtype, device=device)
        return product.T if self.transpose else product

    def add_into(self, target: torch.Tensor) -> torch.Tensor:
        """``target += delta`` in place (float32 target)."""
        b = self.b.to(dtype=target.dtype, device=target.device)
        a = self.a.to(dtype=target.dtype, device=target.device)
        if self.transpose:
            return target.addmm_(a.T, b.T)
        return target.addmm_(b, a)


@dataclass(frozen=True)
class WeightUpdate:
    target: str  # base parameter name, e.g. "model.layers.0.self_attn.q_proj.weight"
    kind: UpdateKind
    # delta (add, dora), broadcastable factor (scale), new tensor (replace), new rows (rows,
    # at ``rows``); LoRA deltas of
    # linear and embedding layers stay factored until they are applied.
    value: torch.Tensor | LowRankProduct
    layout: Layout = "linear"
    magnitude: torch.Tensor | None = None  # DoRA; BOFT's per-output scale after a rotation
    optional: bool = False  # applies only if the base has the parameter (IA3 bias scaling)
    rows: tuple[int, ...] = ()  # kind "rows": which rows of the parameter ``value`` replaces

    def dense_value(self) -> torch.Tensor:
        """``value`` as a float32 tensor (a factored delta multiplied out)."""
        return self.value.to(dtype=torch.float32)

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
    if update.kind == "rows":
        return replace_rows(weight, update)
    # A fresh float32 copy, updated in place: one dense allocation instead of three.
    base = weight.detach().to(torch.float32, copy=True)
    if update.kind == "add" and isinstance(update.value, LowRankProduct):
        return update.value.add_into(base).to(dtype)
    value = update.value.to(dtype=torch.float32, device=weight.device)
    result: torch.Tensor
    if update.kind == "add":
        result = base.add_(value)
    elif update.kind == "scale":
        result = base.mul_(value)
    elif update.kind == "rotate":
        # OFT / BOFT (ops/orthogonal.py): W' = (R @ W.T).T, then BOFT's row scale.
        result = torch.mm(value, base.t()).t()
        if update.magnitude is not None:
            result = result * update.magnitude.to(dtype=torch.float32, device=weight.device)
    else:
        assert update.magnitude is not None
        magnitude = update.magnitude.to(dtype=torch.float32, device=weight.device)
        combined = base + value
        result = _dora_factor(combined, magnitude, update.layout) * combined
    return result.to(dtype)


def apply_update_into(
    weight: torch.Tensor,
    update: WeightUpdate,
    out: torch.Tensor,
    scratch: torch.Tensor | None = None,
) -> bool:
    """Write ``apply_update(weight, update)`` into ``out`` without allocating, where possible.

    Done for a factored delta (LoRA on linear and embedding layers): one ``addmm`` into
    ``out`` for a float32 weight; for other dtypes through ``scratch`` (float32, the
    weight's shape), with the same float32 operations as ``apply_update``, so the result is
    the same bit for bit. ``weight`` may be ``out`` itself. Returns False, leaving ``out``
    untouched, for every other update: the caller uses ``apply_update``.
    """
    value = update.value
    if update.kind != "add" or not isinstance(value, LowRankProduct):
        return False
    if value.shape != weight.shape or out.shape != weight.shape or out.dtype != weight.dtype:
        return False
    b = value.b.to(device=weight.device)
    a = value.a.to(device=weight.device)
    left, right = (a.T, b.T) if value.transpose else (b, a)
    if weight.dtype == torch.float32:
        torch.addmm(weight, left, right, out=out)
        return True
    if scratch is None or scratch.shape != weight.shape or scratch.dtype != torch.float32:
        return False
    scratch.copy_(weight)
    scratch.addmm_(left, right)
    out.copy_(scratch)
    return True


def revert_update(weight: torch.Tensor, update: WeightUpdate) -> torch.Tensor:
    """The value ``weight`` had before ``apply_update(…, update)`` (up to rounding).

    Only additive and scaling updates can be undone from the merged weight alone: DoRA's
    norm and a replaced tensor are not recoverable from it (the loader keeps originals).
    """
    if update.kind not in ("add", "scale"):
        raise ValueError(f"a {update.kind!r} update cannot be undone from the merged weight")
    dtype = weight.dtype
    base = weight.detach().to(torch.float32)
    value = update.value.to(dtype=torch.float32, device=weight.device)
    result = base - value if update.kind == "add" else base / value
    return result.to(dtype)


def replace_rows(weight: torch.Tensor, update: WeightUpdate) -> torch.Tensor:
    """``weight`` with ``update.rows`` replaced by ``update.value`` cast to its dtype, as
    PEFT's trainable tokens do (``index_copy``: the last of repeated indices wins)."""
    if (
        weight.dim() != 2
        or tuple(update.value.shape) != (len(update.rows), weight.shape[1])
        or (update.rows and not 0 <= min(update.rows) <= max(update.rows) < weight.shape[0])
    ):
        raise BaseModelMismatchError(
            f"{update.target}: the adapter replaces rows {_shown(update.rows)} with "
            f"{list(update.value.shape)} values, the model has {list(weight.shape)}; is this "
            "the base (and vocabulary) the adapter was trained on?",
            None,
        )
    index = torch.tensor(update.rows, dtype=torch.long, device=weight.device)
    source = update.value.to(dtype=weight.dtype, device=weight.device)
    return weight.detach().index_copy(0, index, source)


def _shown(rows: tuple[int, ...]) -> str:
    return str(list(rows[:5]))[:-1] + (", ...]" if len(rows) > 5 else "]")


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
