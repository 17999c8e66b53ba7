"""IA3 tensors against their config.

One ``ia3_l`` vector per targeted module: it scales outputs, shape [out, 1], for attention
targets and inputs, shape [1, in], for ``feedforward_modules``; a convolution keeps
[1, channels, 1, ...].
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, group_peft_tensors, shape_of
from registry.formats.matching import is_feedforward
from registry.formats.model import TensorInfo
from registry.formats.text import show

VECTOR = "ia3_l"


def check_ia3(config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> CheckResult:
    groups, result = group_peft_tensors("ia3", config, tensors, (VECTOR,))
    if config.get("fan_in_fan_out") is True:
        result.features.add("fan_in_fan_out")
    _check_feedforward_subset(config, result)
    for module, parts in sorted(groups.items()):
        vector = parts[VECTOR]
        label = f"module {show(module)}"
        shape = vector.shape
        feedforward = is_feedforward(config, module)
        if len(shape) == 2:
            if feedforward and shape[0] != 1:
                result.problems.append(
                    f"{label}: ia3_l has shape {shape_of(vector)}, expected [1, in] for a "
                    "feedforward_modules target"
                )
            elif not feedforward and shape[1] != 1:
                result.problems.append(
                    f"{label}: ia3_l has shape {shape_of(vector)}, expected [out, 1] "
                    "(it is not in feedforward_modules)"
                )
        elif len(shape) > 2:
            result.features.add("conv")
            if shape[0] != 1 or any(d != 1 for d in shape[2:]):
                result.problems.append(
                    f"{label}: ia3_l has shape {shape_of(vector)}, expected [1, channels, 1, ...]"
                )
        else:
            result.problems.append(
                f"{label}: ia3_l has shape {shape_of(vector)}, expected [out, 1] or [1, in]"
            )
    return result


def _check_feedforward_subset(config: Mapping[str, Any], result: CheckResult) -> None:
    # PEFT refuses such a config: a feed-forward module must also be a target.
    targets, feedforward = config.get("target_modules"), config.get("feedforward_modules")
    if isinstance(targets, list) and isinstance(feedforward, list):
        extra = sorted(set(feedforward) - set(targets))
        if extra:
            result.problems.append(
                f"feedforward_modules {extra} are not in target_modules (PEFT requires a subset)"
            )
