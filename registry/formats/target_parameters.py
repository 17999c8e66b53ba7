"""LoRA on parameters (``target_parameters``): MoE expert weights and other bare tensors.

PEFT wraps the module that owns each listed parameter (``mlp.experts.gate_up_proj`` is the
``gate_up_proj`` parameter of every ``mlp.experts`` module); a second parameter of the same
module wraps the first wrapper, so its factors are saved under ``<module>.base_layer.lora_A``
and so on, one ``.base_layer`` per level. Which level holds which parameter follows PEFT's
wrapping order, which the saved keys do not record: the registry checks the structure (every
group belongs to a listed parameter, A and B agree, ranks are ``r`` per expert) and loads these
adapters through PEFT.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

WRAPPED = ".base_layer"


def owning_module(module: str) -> str:
    """``module`` without the ``.base_layer`` levels of nested parameter wrappers."""
    while module.endswith(WRAPPED):
        module = module[: -len(WRAPPED)]
    return module


def depth(module: str) -> int:
    found = 0
    while module.endswith(WRAPPED):
        module, found = module[: -len(WRAPPED)], found + 1
    return found


def parameter_targets(config: Mapping[str, Any], module: str) -> list[str]:
    """The base parameters of (wrapped) ``module`` that ``target_parameters`` selects."""
    entries = config.get("target_parameters")
    if not isinstance(entries, list):
        return []
    owner = owning_module(module)
    found = []
    for entry in entries:
        if not isinstance(entry, str) or "." not in entry:
            continue
        prefix, name = entry.rsplit(".", 1)
        if owner == prefix or owner.endswith("." + prefix):
            found.append(f"{owner}.{name}")
    return sorted(set(found))


def is_parameter_group(config: Mapping[str, Any], module: str) -> bool:
    """Whether ``module``'s factors adapt a parameter rather than the module's weight."""
    targets = parameter_targets(config, module)
    return bool(targets) and depth(module) < len(targets)
