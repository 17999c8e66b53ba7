"""What a model was before PEFT wrapped it in place, and putting it back exactly.

``PeftModel.from_pretrained`` changes the model it is given: it swaps target modules
for tuner layers, wraps ``modules_to_save`` (a classifier head) in a wrapper that runs
the trained copy, sets attributes such as ``prepare_inputs_for_generation``, and for
PiSSA-style initialisations rewrites base weights. ``unload()`` / ``get_base_model()``
undo only part of that, so the snapshot records every module's children, parameters,
buffers, hooks and attribute names (the very objects, no copies) and restores them;
values are copied only when the adapter will rewrite them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_pre_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_backward_hooks",
    "_backward_pre_hooks",
)


@dataclass
class _ModuleState:
    module: torch.nn.Module
    children: dict[str, Any]
    parameters: dict[str, Any]
    buffers: dict[str, Any]
    hooks: dict[str, dict[Any, Any]]
    attributes: frozenset[str]


@dataclass
class ModuleSnapshot:
    model: torch.nn.Module
    states: list[_ModuleState]
    values: dict[str, torch.Tensor] | None


def take_snapshot(model: torch.nn.Module, *, copy_values: bool) -> ModuleSnapshot:
    states = [
        _ModuleState(
            module,
            dict(module._modules),
            dict(module._parameters),
            dict(module._buffers),
            {name: dict(getattr(module, name)) for name in _HOOK_DICTS if hasattr(module, name)},
            frozenset(vars(module)),
        )
        for module in model.modules()
    ]
    values = None
    if copy_values:
        values = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
    return ModuleSnapshot(model, states, values)


def restore_snapshot(snapshot: ModuleSnapshot) -> torch.nn.Module:
    """The model as it was when the snapshot was taken: same objects, same values."""
    for state in snapshot.states:
        module = state.module
        for extra in set(vars(module)) - state.attributes:
            delattr(module, extra)
        for table, saved in (
            (module._modules, state.children),
            (module._parameters, state.parameters),
            (module._buffers, state.buffers),
        ):
            table.clear()
            table.update(saved)
        for name, hooks in state.hooks.items():
            current = getattr(module, name)
            current.clear()
            current.update(hooks)
    if snapshot.values is not None:
        with torch.no_grad():
            for name, tensor in snapshot.model.state_dict(keep_vars=True).items():
                tensor.copy_(snapshot.values[name])
    return snapshot.model
