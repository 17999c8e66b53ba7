"""What an operator hands back: a new adapter's config and tensors, and what it measured."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from registry.errors import IncompatibleAdaptersError
from registry.ops.lowrank import Truncation, summed_retained

# Digests cover lineage parameters: round measured floats so that they do not carry noise
# from the last bits of a float computation.
_DIGITS = 6


@dataclass(frozen=True)
class ModuleResult:
    module: str
    rank: int
    retained: float | None = None  # share of spectral energy kept by a truncation


@dataclass(frozen=True)
class Produced:
    """A new adapter, ready to be written as a PEFT directory."""

    method: str  # "lora" or "ia3"
    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    modules: tuple[ModuleResult, ...]
    parameters: dict[str, Any] = field(default_factory=dict)  # recorded in the lineage
    notes: tuple[str, ...] = ()  # what the caller should know (e.g. changes not captured)


def rounded(value: float) -> float:
    return round(float(value), _DIGITS)


def energy_parameters(
    results: Sequence[ModuleResult], truncations: Sequence[Truncation]
) -> dict[str, Any]:
    """Retained spectral energy overall and in the worst module, for the lineage."""
    if not truncations:
        return {}
    worst = min(results, key=lambda r: (r.retained if r.retained is not None else 1.0, r.module))
    return {
        "retained_energy": rounded(summed_retained(truncations)),
        "retained_energy_min": rounded(worst.retained if worst.retained is not None else 1.0),
        "retained_energy_min_module": worst.module,
    }


def carry_full_tensors(
    rests: Sequence[Mapping[str, torch.Tensor]], labels: Sequence[str]
) -> dict[str, torch.Tensor]:
    """Full tensors saved beside the factors (``modules_to_save``, embedding copies).

    They replace a base parameter, so they cannot be added: one parent may hold a key, or
    several may hold identical copies (the base embedding PEFT saves with an embedding LoRA).
    """
    carried: dict[str, torch.Tensor] = {}
    owner: dict[str, str] = {}
    problems: list[str] = []
    for rest, label in zip(rests, labels, strict=True):
        for key, tensor in sorted(rest.items()):
            if key not in carried:
                carried[key], owner[key] = tensor, label
            elif carried[key].shape != tensor.shape or not torch.equal(carried[key], tensor):
                problems.append(f"{key} (in {owner[key]} and {label})")
    if problems:
        raise IncompatibleAdaptersError(
            "these adapters both replace the same tensors with different values "
            "(modules_to_save or saved embedding layers), which cannot be combined: "
            + ", ".join(problems[:5])
            + (f" and {len(problems) - 5} more" if len(problems) > 5 else "")
        )
    return carried
