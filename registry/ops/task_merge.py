"""Task-vector merging of dense deltas: linear, TIES, DARE and magnitude pruning.

Each function takes the dense deltas of *one* module, one per parent (scaling included),
and the parents' weights, and returns the merged dense delta. The rules follow the papers
as PEFT's ``merge_utils`` implements them, but are applied to the product ``B @ A`` of each
adapter rather than to ``A`` and ``B`` separately:

- linear: ``sum_i w_i D_i``.
- magnitude_prune: keep the ``density`` share of largest-magnitude entries of each ``D_i``,
  then the weighted sum.
- ties (Yadav et al. 2023): magnitude-prune each ``D_i``, elect a sign per entry (sign of the
  sum, or of the count with ``majority_sign="frequency"``), then average the weighted entries
  that agree with it.
- dare_linear (Yu et al. 2023): drop each entry with probability ``1 - density`` and rescale
  the kept ones by ``1 / density``, then the weighted sum. ``dare_ties`` elects signs as ties.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def magnitude_prune(delta: torch.Tensor, density: float) -> torch.Tensor:
    """``delta`` with all but its ``density`` share of largest |entries| set to zero."""
    if density >= 1:
        return delta
    keep = int(density * delta.numel())
    if keep <= 0:
        return torch.zeros_like(delta)
    magnitude = delta.abs().flatten()
    # The keep-th largest value, found in linear time (a full top-k sort is much slower).
    threshold = torch.kthvalue(magnitude, magnitude.numel() - keep + 1).values
    return delta * (delta.abs() >= threshold)


def random_prune(delta: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    """DARE: keep each entry with probability ``density`` and rescale it by ``1 / density``."""
    if density >= 1:
        return delta
    kept = torch.rand(delta.shape, generator=generator) < density
    return delta * kept / density


def _elect(stacked: torch.Tensor, majority_sign: str) -> torch.Tensor:
    sign = stacked.sign()
    votes = stacked.sum(dim=0) if majority_sign == "total" else sign.sum(dim=0)
    majority = torch.where(votes >= 0, 1.0, -1.0)
    return sign == majority


def _weighted(deltas: Sequence[torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    stacked = torch.stack(list(deltas))
    factors = torch.tensor(list(weights), dtype=stacked.dtype)
    return stacked * factors.view(-1, *([1] * (stacked.dim() - 1)))


def _disjoint_mean(
    deltas: Sequence[torch.Tensor], weights: Sequence[float], sign: str
) -> torch.Tensor:
    agree = _elect(torch.stack(list(deltas)), sign)
    weighted = _weighted(deltas, weights) * agree
    return weighted.sum(dim=0) / agree.sum(dim=0).clamp(min=1)


def merge_dense(
    method: str,
    deltas: Sequence[torch.Tensor],
    weights: Sequence[float],
    *,
    density: float = 1.0,
    majority_sign: str = "total",
    generators: Sequence[torch.Generator] = (),
) -> torch.Tensor:
    """The merged delta of one module. ``generators`` (one per delta) drive DARE's drops."""
    if method == "linear":
        return _weighted(deltas, weights).sum(dim=0)
    if method in ("magnitude_prune", "ties"):
        pruned = [magnitude_prune(d, density) for d in deltas]
    elif method in ("dare_linear", "dare_ties"):
        pruned = [random_prune(d, density, g) for d, g in zip(deltas, generators, strict=True)]
    else:
        raise ValueError(f"unknown dense merge method {method!r}")
    if method in ("magnitude_prune", "dare_linear"):
        return _weighted(pruned, weights).sum(dim=0)
    return _disjoint_mean(pruned, weights, majority_sign)
