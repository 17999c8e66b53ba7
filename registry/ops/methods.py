"""What the operators accept, without torch: combine methods and their parameters, ranks.

The CLI builds its choices and checks its options from here, and the operators in
``combine``, ``resize`` and ``extract`` check the same rules, so ``adapters --help`` and a
usage error never need torch, and the two can never disagree.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from registry.errors import ArgumentError

DENSE_METHODS = ("linear", "ties", "dare_linear", "dare_ties", "magnitude_prune")
COMBINE_METHODS = ("cat", "svd", *DENSE_METHODS)
TAKES_RANK = ("svd", *DENSE_METHODS)  # cat keeps every rank: theirs add up
NEEDS_DENSITY = ("ties", "dare_linear", "dare_ties", "magnitude_prune")
SEEDED = ("dare_linear", "dare_ties")  # DARE drops entries at random
ELECTS_SIGN = ("ties", "dare_ties")
MAJORITY_SIGNS = ("total", "frequency")
DEFAULT_MAJORITY_SIGN = "total"
DEFAULT_SEED = 0
MIN_RANK = 1


def rank_problem(rank: int) -> str | None:
    return f"rank must be at least {MIN_RANK}, got {rank}" if rank < MIN_RANK else None


def check_rank(rank: int, operation: str) -> int:
    """``rank``, or ``ArgumentError`` saying why ``operation`` cannot use it."""
    problem = rank_problem(rank)
    if problem is not None:
        raise ArgumentError(f"cannot {operation}: {problem}")
    return rank


@dataclass(frozen=True)
class CombineSpec:
    """How to combine adapters: the typed request the CLI builds and ``ops.combine`` runs."""

    method: str
    weights: tuple[float, ...]  # one per parent
    rank: int | None = None  # target rank for svd and the dense methods (default: max parent r)
    density: float | None = None  # share of entries kept by ties, dare_*, magnitude_prune
    seed: int = DEFAULT_SEED  # DARE's random drops
    majority_sign: str = DEFAULT_MAJORITY_SIGN  # ties, dare_ties: "total" or "frequency"

    @classmethod
    def build(
        cls,
        method: str,
        count: int,
        *,
        weights: Sequence[float] | None = None,
        rank: int | None = None,
        density: float | None = None,
        seed: int = DEFAULT_SEED,
        majority_sign: str = DEFAULT_MAJORITY_SIGN,
    ) -> CombineSpec:
        """The spec for ``count`` parents from loose arguments: ``weights`` default to 1 each.
        Not checked; ``validate`` (or ``problems``) says what is wrong with it."""
        given = tuple(float(w) for w in weights) if weights is not None else (1.0,) * count
        return cls(method, given, rank, density, seed, majority_sign)

    @classmethod
    def for_call(
        cls, spec: CombineSpec | None, count: int, parameters: Mapping[str, Any]
    ) -> CombineSpec:
        """``combine``'s spec: ``spec`` itself, or one built from its loose fields, never
        both."""
        if spec is None:
            return cls.build(count=count, **parameters)
        if parameters:
            raise TypeError(f"give a CombineSpec or its fields, not both: {sorted(parameters)}")
        return spec

    def mismatches(self, count: int) -> list[str]:
        """Parameters that do not fit the method or the number of parents: a weight count, a
        rank for cat, a missing density. (The CLI reports these as usage errors.)"""
        found = []
        if len(self.weights) != count:
            found.append(f"{len(self.weights)} weight(s) for {count} adapter(s)")
        if self.rank is not None and self.method == "cat":
            found.append("cat keeps every rank (their sum); --rank applies to svd and the others")
        if self.method in NEEDS_DENSITY and self.density is None:
            found.append(f"{self.method} needs a density (share of entries kept, e.g. 0.5)")
        return found

    def problems(self, count: int) -> list[str]:
        """Every reason this spec cannot combine ``count`` adapters (empty when it can)."""
        found = []
        if self.method not in COMBINE_METHODS:
            found.append(f"unknown method {self.method!r}; use one of {', '.join(COMBINE_METHODS)}")
        found += self.mismatches(count)
        if not all(math.isfinite(w) for w in self.weights):
            found.append("weights must be finite numbers")
        rank = rank_problem(self.rank) if self.rank is not None else None
        if rank is not None:
            found.append(rank)
        if self.density is not None and not 0 < self.density <= 1:
            found.append(f"density must be in (0, 1], got {self.density}")
        if self.majority_sign not in MAJORITY_SIGNS:
            found.append(f"majority sign must be one of {', '.join(MAJORITY_SIGNS)}")
        if count < 1:
            found.append("no adapters to combine")
        return found

    def validate(self, count: int) -> CombineSpec:
        """This spec, or one ``ArgumentError`` naming every problem for ``count`` parents."""
        problems = self.problems(count)
        if problems:
            raise ArgumentError("cannot combine: " + "; ".join(problems))
        return self

    def parameters(self, rank: int | None) -> dict[str, Any]:
        """What the lineage records: the parameters this method used (``rank`` as applied)."""
        params: dict[str, Any] = {"method": self.method}
        if self.method in TAKES_RANK and rank is not None:
            params["rank"] = rank
        if self.method in NEEDS_DENSITY:
            params["density"] = self.density
        if self.method in SEEDED:
            params["seed"] = self.seed
        if self.method in ELECTS_SIGN:
            params["majority_sign"] = self.majority_sign
        return params
