"""What a native load will write into a live model, or why it cannot match PEFT.

The adapter's updates are renamed to the model's own parameter names (a tied output layer
is its input embedding's tensor) and checked for what an in-place fold cannot reproduce:
a tied tensor that PEFT changes for one of its modules only, a ``lora_bias`` on a layer
without a bias (PEFT adds it at run time; there is no tensor to fold it into), and LoRA on
``target_parameters``. Either way
``mode="auto"`` loads through PEFT instead, and ``mode="native"`` refuses with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from registry.errors import UnsupportedMethodError
from registry.ops.fold import weight_updates
from registry.ops.tensors import load_adapter_tensors
from registry.ops.ties import resolve_ties
from registry.ops.updates import WeightUpdate

if TYPE_CHECKING:
    from registry.store.results import AdapterVersion
    from registry.store.store import Store


@dataclass(frozen=True)
class NativePlan:
    updates: list[WeightUpdate]
    problem: str | None = None


def canonical_names(model: torch.nn.Module) -> dict[str, str]:
    """Every name of a tensor the model uses under several names -> the name
    ``named_parameters()`` keeps for it (its first)."""
    first: dict[int, str] = {}
    names: dict[int, list[str]] = {}
    for name, tensor in model.named_parameters(remove_duplicate=False):
        first.setdefault(id(tensor), name)
        names.setdefault(id(tensor), []).append(name)
    return {n: first[key] for key, found in names.items() if len(found) > 1 for n in found}


def plan_native(store: Store, version: AdapterVersion, model: torch.nn.Module) -> NativePlan:
    weights = next(f for f in version.files if f.role == "weights")
    adapter = load_adapter_tensors(
        version.method, version.manifest.config, store.blobs.path(weights.sha256)
    )
    shapes = {name: t.shape for name, t in model.named_parameters(remove_duplicate=False)}
    shapes.update({name: t.shape for name, t in model.named_buffers()})
    try:
        updates = weight_updates(adapter, shapes)
    except UnsupportedMethodError as exc:  # LoRA on target_parameters, OFT on a convolution
        return NativePlan([], str(exc).removesuffix("; load it with mode='peft'"))
    tied = resolve_ties(updates, canonical_names(model))
    if tied.problem is not None:
        return NativePlan([], tied.problem)
    for update in tied.updates:
        if update.target.endswith(".bias") and update.target not in shapes and not update.optional:
            module = update.target[: -len(".bias")]
            if f"{module}.weight" in shapes:
                return NativePlan(
                    [],
                    f"lora_bias trains a bias for {module}, which has none in this model; PEFT "
                    "adds it at run time, a fold has no tensor to put it in",
                )
    return NativePlan(tied.updates)
