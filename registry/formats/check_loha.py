"""LoHa tensors against their config.

Linear: ``hada_w1_a`` / ``hada_w2_a`` [out, r] and ``hada_w1_b`` / ``hada_w2_b`` [r, in]
(in flattened over the kernel for a plain convolution). With ``use_effective_conv2d`` a
convolution adds ``hada_t1`` / ``hada_t2`` [r, r, *kernel] and its factors become [r, out] and
[r, in]. ``r`` comes from ``rank_pattern`` when a key matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, group_peft_tensors, rank_label, shape_of
from registry.formats.matching import pattern_value
from registry.formats.model import TensorInfo
from registry.formats.text import show

DEFAULT_R = 8
FACTORS = ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b")
CORES = ("hada_t1", "hada_t2")


def check_loha(config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> CheckResult:
    groups, result = group_peft_tensors("loha", config, tensors, FACTORS + CORES)
    if config.get("rank_pattern"):
        result.features.add("rank_pattern")
    for module, parts in sorted(groups.items()):
        _check_module(config, module, parts, result)
    return result


def _check_module(
    config: Mapping[str, Any], module: str, parts: dict[str, TensorInfo], result: CheckResult
) -> None:
    label = f"module {show(module)}"
    problems = result.problems
    missing = [name for name in FACTORS if name not in parts]
    if missing:
        problems.append(f"{label}: missing {', '.join(missing)}")
        return
    cores = [name for name in CORES if name in parts]
    if len(cores) == 1:
        problems.append(f"{label}: has {cores[0]} but not its partner (hada_t1 and hada_t2)")
        return
    found = pattern_value(config.get("rank_pattern"), module)
    r = found[1] if found else config.get("r", DEFAULT_R)
    rank = rank_label(r, found[0] if found else None)
    if any(len(parts[name].shape) != 2 for name in FACTORS):
        shapes = ", ".join(f"{n} {shape_of(parts[n])}" for n in FACTORS)
        problems.append(f"{label}: factors must be matrices, found {shapes}")
        return
    if cores:
        result.features.add("effective_conv2d")
        for name in CORES:
            core = parts[name]
            if len(core.shape) < 3 or core.shape[:2] != (r, r):
                problems.append(
                    f"{label}: {name} has shape {shape_of(core)}, expected [{r}, {r}, *kernel] "
                    f"({rank})"
                )
        # Tucker form: both factors of each pair have the rank first.
        rank_dims = {name: parts[name].shape[0] for name in FACTORS}
    else:
        rank_dims = {
            "hada_w1_a": parts["hada_w1_a"].shape[1],
            "hada_w1_b": parts["hada_w1_b"].shape[0],
            "hada_w2_a": parts["hada_w2_a"].shape[1],
            "hada_w2_b": parts["hada_w2_b"].shape[0],
        }
    for name, found_rank in rank_dims.items():
        if found_rank != r:
            problems.append(
                f"{label}: {name} has rank {found_rank} (shape {shape_of(parts[name])}) but {rank}"
            )
    w1a, w1b, w2a, w2b = (parts[name].shape for name in FACTORS)
    out_axis = 1 if cores else 0
    in_axis = 1
    if w1a[out_axis] != w2a[out_axis] or w1b[in_axis] != w2b[in_axis]:
        problems.append(
            f"{label}: the two Hadamard factors disagree on the weight shape "
            f"(hada_w1 {list(w1a)}x{list(w1b)}, hada_w2 {list(w2a)}x{list(w2b)})"
        )
