"""Updates aimed at checkpoint tensors that the live model holds under other names or fused.

An adapter trained before transformers 5 names the modules as they were saved (Mixtral's
per-expert ``block_sparse_moe.experts.E.w1``); the live model fuses them into one parameter
(``mlp.experts.gate_up_proj``). Such an update is applied as transformers would load a
checkpoint with it merged: the live parameter is split into its saved tensors, the updates
land on theirs, and the result is converted back, so every element outside them is kept bit
for bit. This is what peft's conversion of such adapters computes (one delta per expert slice).
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from typing import TYPE_CHECKING

from registry.bases.checkpoint_names import layout_of_model
from registry.errors import BaseModelMismatchError
from registry.ops.updates import WeightUpdate, apply_update

if TYPE_CHECKING:
    import torch


def route_saved_updates(
    model: torch.nn.Module, live: Container[str], updates: Sequence[WeightUpdate]
) -> tuple[list[WeightUpdate], dict[str, list[WeightUpdate]]]:
    """``updates`` split into those aimed at live tensors and, by live tensor, those aimed at
    checkpoint names it is loaded from; updates that name neither stay in the first list."""
    direct: list[WeightUpdate] = []
    saved: dict[str, list[WeightUpdate]] = {}
    layout = None
    for update in updates:
        if update.target in live:
            direct.append(update)
            continue
        layout = layout or layout_of_model(model)
        owner = layout.live_name(update.target) if layout is not None else None
        if owner is None or owner not in live:
            direct.append(update)  # the loader reports it as missing
        else:
            saved.setdefault(owner, []).append(update)
    return direct, saved


def apply_saved_updates(
    model: torch.nn.Module, live: str, tensor: torch.Tensor, updates: Sequence[WeightUpdate]
) -> torch.Tensor:
    """The new value of live tensor ``live`` with ``updates`` applied to its saved tensors."""
    layout = layout_of_model(model)
    if layout is None:
        raise BaseModelMismatchError(f"the model has no parameter {updates[0].target}", None)
    pending = {u.target for u in updates}

    def update(name: str, value: torch.Tensor) -> torch.Tensor:
        for step in (u for u in updates if u.target == name):
            expected = step.expected_shape()
            if expected is not None and expected != tuple(value.shape):
                raise BaseModelMismatchError(
                    f"{name}: the adapter produces shape {list(expected)}, the checkpoint "
                    f"tensor (a part of {live}) has {list(value.shape)}",
                    None,
                )
            value = apply_update(value, step)
        pending.discard(name)
        return value

    result = layout.updated(live, tensor, update)
    if pending:
        raise BaseModelMismatchError(
            f"the model has no parameter {sorted(pending)[0]} (nor does {live} hold it)", None
        )
    if result.shape != tensor.shape or result.dtype != tensor.dtype:
        raise BaseModelMismatchError(f"{live}: converting it back changed its shape", None)
    return result
