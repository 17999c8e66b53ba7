"""VeRA tensors against their config.

Per targeted module ``vera_lambda_d`` [r] and ``vera_lambda_b`` [out]. The frozen random
projections are shared by all modules: ``base_model.vera_A`` [r, max in] and
``base_model.vera_B`` [max out, r], saved only when ``save_projection`` is true (otherwise PEFT
regenerates them from ``projection_prng_key``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, group_peft_tensors, shape_of
from registry.formats.model import TensorInfo
from registry.formats.text import show

DEFAULT_R = 256
LAMBDA_B, LAMBDA_D = "vera_lambda_b", "vera_lambda_d"
PROJ_A, PROJ_B = "base_model.vera_A", "base_model.vera_B"


def check_vera(config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> CheckResult:
    groups, result = group_peft_tensors(
        "vera",
        config,
        tensors,
        (LAMBDA_B, LAMBDA_D),
        shared=lambda key: key in (PROJ_A, PROJ_B),
        bias_mode="vera_only",
    )
    r = config.get("r", DEFAULT_R)
    max_out = _check_projections(config, tensors, r, result)
    for module, parts in sorted(groups.items()):
        label = f"module {show(module)}"
        missing = [name for name in (LAMBDA_B, LAMBDA_D) if name not in parts]
        if missing:
            result.problems.append(f"{label}: missing {', '.join(missing)}")
            continue
        d, b = parts[LAMBDA_D], parts[LAMBDA_B]
        if d.shape != (r,):
            result.problems.append(
                f"{label}: {LAMBDA_D} has shape {shape_of(d)}, expected [{r}] (r is {r})"
            )
        if len(b.shape) != 1:
            result.problems.append(f"{label}: {LAMBDA_B} has shape {shape_of(b)}, expected [out]")
        elif max_out is not None and b.shape[0] > max_out:
            result.problems.append(
                f"{label}: {LAMBDA_B} has {b.shape[0]} outputs but vera_B covers only {max_out}"
            )
    return result


def _check_projections(
    config: Mapping[str, Any], tensors: Mapping[str, TensorInfo], r: int, result: CheckResult
) -> int | None:
    """Check the shared projections; return the output size vera_B covers, if saved."""
    proj_a, proj_b = tensors.get(PROJ_A), tensors.get(PROJ_B)
    if config.get("save_projection", True) is not True:
        for info in (proj_a, proj_b):
            if info is not None:
                result.problems.append(
                    f"tensor {info.name}: present although save_projection is false"
                )
        return None
    for name, info in ((PROJ_A, proj_a), (PROJ_B, proj_b)):
        if info is None:
            result.problems.append(
                f"tensor {name} is missing (save_projection is true, so PEFT saves it)"
            )
    if proj_a is not None and (len(proj_a.shape) != 2 or proj_a.shape[0] != r):
        result.problems.append(
            f"tensor {PROJ_A}: shape {shape_of(proj_a)}, expected [{r}, in] (r is {r})"
        )
    if proj_b is not None and (len(proj_b.shape) != 2 or proj_b.shape[1] != r):
        result.problems.append(
            f"tensor {PROJ_B}: shape {shape_of(proj_b)}, expected [out, {r}] (r is {r})"
        )
        return None
    return proj_b.shape[0] if proj_b is not None else None
