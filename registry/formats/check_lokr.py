"""LoKr tensors against their config.

The update is kron(w1, w2). Each side is either full (``lokr_w1`` / ``lokr_w2``) or a rank-r
product: ``lokr_w1_a`` [a, r] @ ``lokr_w1_b`` [r, b]; ``lokr_w2_a`` [c, r] @ ``lokr_w2_b``
[r, d] (d flattened over a kernel), or with ``use_effective_conv2d`` ``lokr_t2``
[r, r, *kernel] with ``lokr_w2_a`` [r, c] and ``lokr_w2_b`` [r, d]. Exactly one form per side.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, group_peft_tensors, rank_label, shape_of
from registry.formats.matching import pattern_value
from registry.formats.model import TensorInfo
from registry.formats.text import show

DEFAULT_R = 8
SUFFIXES = ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2")


def check_lokr(config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> CheckResult:
    groups, result = group_peft_tensors("lokr", config, tensors, SUFFIXES)
    if config.get("decompose_both") is True:
        result.features.add("decompose_both")
    if config.get("rank_pattern"):
        result.features.add("rank_pattern")
    for module, parts in sorted(groups.items()):
        _check_module(config, module, parts, result)
    return result


def _side(label: str, parts: dict[str, TensorInfo], side: str, problems: list[str]) -> str | None:
    """Which form side ``w1``/``w2`` takes: "full", "factored", or None when broken."""
    full = f"lokr_{side}" in parts
    a, b = f"lokr_{side}_a" in parts, f"lokr_{side}_b" in parts
    if full and (a or b):
        problems.append(f"{label}: has lokr_{side} and its factors; expected one form")
        return None
    if full:
        return "full"
    if a and b:
        return "factored"
    if a or b:
        have = f"lokr_{side}_a" if a else f"lokr_{side}_b"
        problems.append(f"{label}: has {have} but not its partner")
    else:
        problems.append(f"{label}: missing lokr_{side} (or lokr_{side}_a and lokr_{side}_b)")
    return None


def _check_module(
    config: Mapping[str, Any], module: str, parts: dict[str, TensorInfo], result: CheckResult
) -> None:
    label = f"module {show(module)}"
    problems = result.problems
    first = _side(label, parts, "w1", problems)
    second = _side(label, parts, "w2", problems)
    core = parts.get("lokr_t2")
    if core is not None and second != "factored":
        problems.append(f"{label}: has lokr_t2 without lokr_w2_a and lokr_w2_b")
        return
    found = pattern_value(config.get("rank_pattern"), module)
    r = found[1] if found else config.get("r", DEFAULT_R)
    rank = rank_label(r, found[0] if found else None)
    ranks: dict[str, int] = {}
    if first == "factored":
        ranks["lokr_w1_a"] = _dim(parts["lokr_w1_a"], 1)
        ranks["lokr_w1_b"] = _dim(parts["lokr_w1_b"], 0)
    if second == "factored":
        if core is not None:
            result.features.add("effective_conv2d")
            ranks["lokr_w2_a"] = _dim(parts["lokr_w2_a"], 0)
            if len(core.shape) < 3 or core.shape[:2] != (r, r):
                problems.append(
                    f"{label}: lokr_t2 has shape {shape_of(core)}, expected [{r}, {r}, *kernel] "
                    f"({rank})"
                )
        else:
            ranks["lokr_w2_a"] = _dim(parts["lokr_w2_a"], 1)
        ranks["lokr_w2_b"] = _dim(parts["lokr_w2_b"], 0)
    for name, found_rank in ranks.items():
        if found_rank != r:
            problems.append(
                f"{label}: {name} has rank {found_rank} (shape {shape_of(parts[name])}) but {rank}"
            )


def _dim(info: TensorInfo, axis: int) -> int:
    return info.shape[axis] if len(info.shape) > axis else -1
