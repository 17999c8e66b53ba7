"""Per-method checks of an adapter's tensors against its config.

``check_tensors`` dispatches on the method; each returns every problem it finds plus the
features it saw. Zero-size tensors are reported here for all methods, except where a method
allows them (AdaLoRA ranks pruned to nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_adalora import check_adalora
from registry.formats.check_adapterhub import check_adapterhub_lora, check_adapterhub_prefix
from registry.formats.check_bottleneck import check_bottleneck
from registry.formats.check_common import CheckResult
from registry.formats.check_ia3 import check_ia3
from registry.formats.check_ln_tuning import check_ln_tuning
from registry.formats.check_loha import check_loha
from registry.formats.check_lokr import check_lokr
from registry.formats.check_lora import check_lora
from registry.formats.check_prompt import check_prompt
from registry.formats.check_tokens import check_tokens
from registry.formats.check_vera import check_vera
from registry.formats.model import TensorInfo
from registry.formats.text import show, show_shape

__all__ = ["CheckResult", "check_tensors"]

_PEFT_CHECKS = {
    "lora": check_lora,
    "ia3": check_ia3,
    "loha": check_loha,
    "lokr": check_lokr,
    "adalora": check_adalora,
    "vera": check_vera,
    "trainable_tokens": check_tokens,
    "ln_tuning": check_ln_tuning,
}
_PROMPT_METHODS = ("prompt_tuning", "p_tuning", "prefix_tuning")


def check_tensors(
    method: str, config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]
) -> CheckResult:
    """Every mismatch between ``tensors`` and ``config`` for adapter ``method``."""
    result = CheckResult()
    if not tensors:
        result.problems.append("holds no tensors")
        return result
    if method == "bottleneck":
        result.add(check_bottleneck(config, tensors))
    elif method in ("adapterhub_lora", "adapterhub_ia3"):
        result.add(check_adapterhub_lora(config, tensors))
    elif method == "adapterhub_prefix_tuning":
        result.add(check_adapterhub_prefix(config, tensors))
    elif method in _PROMPT_METHODS:
        result.add(check_prompt(method, config, tensors))
    elif method in _PEFT_CHECKS:
        result.add(_PEFT_CHECKS[method](config, tensors))
    else:
        raise ValueError(f"no tensor checks for method {method!r}")
    for name, info in sorted(tensors.items()):
        if info.numel == 0 and name not in result.empty_ok:
            result.problems.append(
                f"tensor {show(name)}: has no elements (shape {show_shape(info.shape)})"
            )
    return result
