"""IA3 folded into weights: attention targets scale output rows (and the bias),
feed-forward targets scale input columns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from registry.formats.matching import is_feedforward
from registry.ops.updates import WeightUpdate

IA3_SUFFIXES = ("ia3_l",)


def ia3_updates(
    config: Mapping[str, Any], groups: Mapping[str, Mapping[str, torch.Tensor]]
) -> list[WeightUpdate]:
    fan_in_fan_out = bool(config.get("fan_in_fan_out"))
    updates: list[WeightUpdate] = []
    for module, parts in sorted(groups.items()):
        vector = parts["ia3_l"].to(torch.float32)  # [out, 1] or [1, in] in nn.Linear terms
        feedforward = is_feedforward(config, module)
        factor = vector.T if fan_in_fan_out and vector.dim() == 2 else vector
        updates.append(WeightUpdate(f"{module}.weight", "scale", factor))
        if not feedforward:
            # PEFT scales the bias of attention targets too (rows = outputs).
            updates.append(
                WeightUpdate(f"{module}.bias", "scale", vector.reshape(-1), optional=True)
            )
    return updates
