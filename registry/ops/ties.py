"""Updates on tied parameters: one tensor that the base uses under several names.

Folding an update into a tied tensor changes every module that shares it. PEFT does the same
only where the adapter changes every alias alike: LoRA saved with ``ensure_weight_tying`` (the
output layer's factors are the embedding's, transposed), and trainable tokens on the input
embedding (PEFT ties the output layer's tokens to them). Otherwise PEFT changes one module and
leaves the other on the original tensor (a ``modules_to_save`` copy of the embedding, even with
``ensure_weight_tying``, as ``PeftModel.from_pretrained`` of peft 0.21.2 loads it), which no
in-place fold can reproduce. Updates named after several aliases must agree; one is kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from registry.formats.check_tokens import TIED_OUTPUTS
from registry.formats.tied_weights import tied_embedding, tied_output
from registry.ops.updates import WeightUpdate


@dataclass(frozen=True)
class TiedUpdates:
    updates: list[WeightUpdate]  # targets renamed to the canonical name of each tensor
    problem: str | None = None  # why a fold cannot match PEFT, if it cannot


def _is_output(name: str) -> bool:
    parts = name.split(".")
    return len(parts) >= 2 and parts[-2] in TIED_OUTPUTS


def _same(a: list[WeightUpdate], b: list[WeightUpdate]) -> bool:
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x.kind != y.kind or x.rows != y.rows:
            return False
        left, right = x.dense_value(), y.dense_value()
        if left.shape != right.shape or not torch.allclose(left, right, rtol=1e-5, atol=1e-7):
            return False
    return True


def resolve_ties(
    updates: Sequence[WeightUpdate],
    canonical: Mapping[str, str],
) -> TiedUpdates:
    """``updates`` with tied targets resolved; ``canonical`` maps every alias of a tied
    tensor (names absent are untied) to the one name the tensor is updated under."""
    by_tensor: dict[str, dict[str, list[WeightUpdate]]] = {}
    untied: list[WeightUpdate] = []
    for update in updates:
        name = canonical.get(update.target)
        if name is None:
            untied.append(update)
        else:
            by_tensor.setdefault(name, {}).setdefault(update.target, []).append(update)
    kept = list(untied)
    for name, by_alias in by_tensor.items():
        aliases = sorted(a for a, c in canonical.items() if c == name)
        first_alias, first = next(iter(by_alias.items()))
        for alias, found in by_alias.items():
            if not _same(found, first):
                return TiedUpdates([], _differ(first_alias, alias))
        rows_on_input = all(u.kind == "rows" for u in first) and not _is_output(first_alias)
        if len(by_alias) < len(aliases) and not rows_on_input:
            others = ", ".join(a for a in aliases if a not in by_alias)
            return TiedUpdates(
                [],
                f"the base ties {first_alias} to {others} (one tensor) and the adapter changes "
                f"only {first_alias}, which PEFT applies to that module alone; folding it into "
                "the shared tensor would change both",
            )
        kept.extend(replace(u, target=name) for u in first)
    return TiedUpdates(kept)


def _differ(a: str, b: str) -> str:
    return (
        f"the base ties {a} and {b} (one tensor) but the adapter changes them differently, "
        "which PEFT applies module by module; folding both into the shared tensor cannot"
    )


def checkpoint_ties(
    targets: Sequence[str], stored: Collection[str], config: Mapping[str, Any]
) -> dict[str, str]:
    """The canonical map ``resolve_ties`` takes, for a checkpoint that leaves out tied
    tensors: each target absent from ``stored`` that the base ties to its input embedding."""
    canonical: dict[str, str] = {}
    for target in targets:
        alias = tied_embedding(target, stored, config)
        if alias is not None:
            canonical[target] = canonical[alias] = alias
        output = tied_output(target, stored, config)
        if output is not None:
            canonical[output] = canonical[target] = target
    return canonical
