"""Low-rank factor algebra: a delta kept as ``b @ a`` and truncated without forming it.

A sum of LoRA deltas ``sum_i B_i A_i`` is one product ``[B_1 .. B_n] @ [A_1; ..; A_n]`` of
stacked factors. Its best rank-k approximation comes from thin QR factorisations of the
stacked B (``Q_b R_b``) and of the stacked A transposed (``Q_a R_a``): the product equals
``Q_b (R_b R_a^T) Q_a^T`` with orthonormal ``Q``s, so the singular values and vectors come
from the SVD of the small core ``R_b R_a^T`` (at most R x R for a stacked rank R). That costs
O((m + n) R^2) instead of an SVD of the m x n dense delta.

Singular values go into ``b`` (``b = U S``, ``a = V^T``), the convention PEFT uses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

# Singular values below this share of the largest are rounding noise when a dense delta is
# turned into factors without loss (e.g. a LoHa delta entering a `cat`).
_NUMERICAL_ZERO = 1e-6


@dataclass(frozen=True)
class LowRank:
    """A delta ``b @ a`` as 2-D factors: ``b`` [m, r], ``a`` [r, n]."""

    b: torch.Tensor
    a: torch.Tensor

    @property
    def rank(self) -> int:
        return int(self.a.shape[0])

    def dense(self) -> torch.Tensor:
        return self.b.to(torch.float32) @ self.a.to(torch.float32)


@dataclass(frozen=True)
class Truncation:
    """A truncated factorisation and how much of the spectrum it kept."""

    low: LowRank
    kept_energy: float  # sum of kept squared singular values
    total_energy: float  # squared Frobenius norm of the delta that was truncated

    @property
    def retained(self) -> float:
        """Share of spectral energy kept, 1.0 for an all-zero delta."""
        return 1.0 if self.total_energy <= 0 else min(1.0, self.kept_energy / self.total_energy)


def stack(terms: Sequence[tuple[float, LowRank]]) -> LowRank:
    """``sum_i w_i b_i a_i`` exactly, as one product of concatenated factors.

    The weight goes into ``a``, as PEFT's ``cat`` does.
    """
    b = torch.cat([low.b.to(torch.float32) for _, low in terms], dim=1)
    a = torch.cat([low.a.to(torch.float32) * float(w) for w, low in terms], dim=0)
    return LowRank(b, a)


def truncate(low: LowRank, rank: int) -> Truncation:
    """Best rank-``rank`` approximation of ``low.b @ low.a`` without forming it.

    Done in float64: the QR and the core SVD are small, and the extra precision keeps the
    result equal to a dense truncated SVD of the float32 sum to well under 1e-6.
    """
    b = low.b.to(torch.float64)
    a = low.a.to(torch.float64)
    q_b, r_b = torch.linalg.qr(b)  # [m, p], [p, R]
    q_a, r_a = torch.linalg.qr(a.T)  # [n, q], [q, R]
    u, s, vh = torch.linalg.svd(r_b @ r_a.T, full_matrices=False)
    keep = max(0, min(rank, int(s.shape[0])))
    total = float((s * s).sum())
    kept = float((s[:keep] * s[:keep]).sum())
    new_b = (q_b @ u[:, :keep]) * s[:keep]
    new_a = vh[:keep] @ q_a.T
    return Truncation(LowRank(new_b.to(torch.float32), new_a.to(torch.float32)), kept, total)


def truncate_dense(delta: torch.Tensor, rank: int) -> Truncation:
    """Best rank-``rank`` approximation of a dense 2-D delta (exact SVD)."""
    matrix = delta.to(torch.float32)
    u, s, vh = torch.linalg.svd(matrix, full_matrices=False)
    keep = max(0, min(rank, int(s.shape[0])))
    s64 = s.to(torch.float64)
    total = float((s64 * s64).sum())
    kept = float((s64[:keep] * s64[:keep]).sum())
    return Truncation(LowRank(u[:, :keep] * s[:keep], vh[:keep].contiguous()), kept, total)


def factor_dense(delta: torch.Tensor) -> LowRank:
    """A dense delta as factors of its numerical rank: equal to it up to float rounding."""
    u, s, vh = torch.linalg.svd(delta.to(torch.float64), full_matrices=False)
    if s.numel() == 0 or float(s[0]) == 0.0:
        keep = 1 if s.numel() else 0
    else:
        keep = max(1, int((s > s[0] * _NUMERICAL_ZERO).sum()))
    b = (u[:, :keep] * s[:keep]).to(torch.float32)
    return LowRank(b, vh[:keep].to(torch.float32))


def randomized_truncate(
    delta: torch.Tensor, rank: int, *, seed: int = 0, oversample: int = 10, iterations: int = 2
) -> Truncation:
    """Rank-``rank`` approximation by randomized SVD (Halko et al.), exact SVD when small.

    The retained share divides the captured energy by the exact squared Frobenius norm.
    """
    matrix = delta.to(torch.float32)
    smallest = min(matrix.shape)
    sketch = rank + oversample
    if smallest <= 2 * sketch:
        return truncate_dense(matrix, rank)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        u, s, v = torch.svd_lowrank(matrix, q=sketch, niter=iterations)
    keep = min(rank, int(s.shape[0]))
    s64 = s[:keep].to(torch.float64)
    total = float(torch.linalg.vector_norm(matrix.to(torch.float64)) ** 2)
    low = LowRank(u[:, :keep] * s[:keep], v[:, :keep].T.contiguous())
    return Truncation(low, float((s64 * s64).sum()), total)


def summed_retained(truncations: Sequence[Truncation]) -> float:
    """Retained energy over several modules taken together."""
    total = math.fsum(t.total_energy for t in truncations)
    kept = math.fsum(t.kept_energy for t in truncations)
    return 1.0 if total <= 0 else min(1.0, kept / total)
