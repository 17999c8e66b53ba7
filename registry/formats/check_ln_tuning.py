"""LN tuning (LN_TUNING) against its config.

PEFT trains a copy of each targeted module (normally a layer norm) and saves all of the
copy's parameters as ``<module>.ln_tuning_layers.<parameter>``: a full replacement of the
module's own ``weight`` (and ``bias`` where it has one).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, group_peft_tensors
from registry.formats.model import TensorInfo

LAYERS = "ln_tuning_layers"
SUFFIXES = (f"{LAYERS}.weight", f"{LAYERS}.bias")


def check_ln_tuning(config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> CheckResult:
    groups, result = group_peft_tensors("ln_tuning", config, tensors, SUFFIXES)
    for module, parts in sorted(groups.items()):
        if f"{LAYERS}.weight" not in parts:
            result.problems.append(f"module {module!r}: has {LAYERS}.bias but no {LAYERS}.weight")
    return result
