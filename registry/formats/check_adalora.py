"""AdaLoRA tensors against their config.

Per targeted module ``lora_A`` [rank, in], ``lora_B`` [out, rank] and ``lora_E`` [rank, 1] (no
``.weight`` suffix). Before rank allocation ``rank`` is ``init_r``; afterwards ``rank_pattern``
maps ``<module>.lora_E`` to a keep-mask over the ``init_r`` ranks and PEFT saves only the kept
ones, so ``rank`` is the mask's count of true values, and may be 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, group_peft_tensors, shape_of
from registry.formats.model import TensorInfo
from registry.formats.text import show

DEFAULT_INIT_R = 12
SUFFIXES = ("lora_A", "lora_B", "lora_E")


def check_adalora(config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> CheckResult:
    groups, result = group_peft_tensors("adalora", config, tensors, SUFFIXES, bias_mode="lora_only")
    init_r = config.get("init_r", DEFAULT_INIT_R)
    masks = config.get("rank_pattern") or {}
    if masks:
        result.features.add("rank_allocated")
    for key, mask in sorted(masks.items()):
        if isinstance(mask, list) and len(mask) != init_r:
            result.problems.append(
                f"rank_pattern[{key!r}] has {len(mask)} entries but init_r is {init_r}"
            )
    for module, parts in sorted(groups.items()):
        label = f"module {show(module)}"
        missing = [name for name in SUFFIXES if name not in parts]
        if missing:
            result.problems.append(f"{label}: missing {', '.join(missing)}")
            continue
        mask = masks.get(f"{module}.lora_E")
        if isinstance(mask, list):
            rank, source = sum(1 for kept in mask if kept is True), "rank_pattern"
        else:
            rank, source = init_r, "init_r"
        if rank == 0:
            result.empty_ok.update(f"base_model.model.{module}.{name}" for name in SUFFIXES)
        a, b, e = parts["lora_A"], parts["lora_B"], parts["lora_E"]
        checks = (
            ("lora_A", a, len(a.shape) == 2 and a.shape[0] == rank, f"[{rank}, in]"),
            ("lora_B", b, len(b.shape) == 2 and b.shape[1] == rank, f"[out, {rank}]"),
            ("lora_E", e, e.shape == (rank, 1), f"[{rank}, 1]"),
        )
        for name, info, ok, expected in checks:
            if not ok:
                result.problems.append(
                    f"{label}: {name} has shape {shape_of(info)}, expected {expected} "
                    f"(rank {rank} from {source})"
                )
    return result
