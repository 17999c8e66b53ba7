"""An adapter as a list of weight updates to its base model, for every foldable method."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from registry.errors import UnsupportedMethodError
from registry.formats.lora_init import base_rewriting_init, base_rewriting_message
from registry.formats.target_parameters import is_parameter_group, owning_module
from registry.ops.ia3 import IA3_SUFFIXES, ia3_updates
from registry.ops.layernorm import LN_SUFFIXES, ln_updates
from registry.ops.lora import LORA_SUFFIXES, lora_updates
from registry.ops.lycoris import LOHA_SUFFIXES, LOKR_SUFFIXES, loha_updates, lokr_updates
from registry.ops.orthogonal import BOFT_SUFFIXES, OFT_SUFFIXES, boft_updates, oft_updates
from registry.ops.tensors import AdapterTensors, base_parameter, group_by_module
from registry.ops.tokens import LORA_TOKEN_DELTA, TOKEN_DELTA, split_tokens, token_updates
from registry.ops.updates import WeightUpdate

FOLDABLE_METHODS = ("lora", "ia3", "loha", "lokr", "oft", "boft", "trainable_tokens", "ln_tuning")

_NOT_FOLDABLE = {
    "prefix_tuning": "prefix tuning adds learned key/value prefixes to every attention layer; "
    "there are no base weights to fold it into",
    "prompt_tuning": "prompt tuning prepends learned virtual tokens to the input; "
    "there are no base weights to fold it into",
    "p_tuning": "p-tuning prepends learned virtual tokens to the input; "
    "there are no base weights to fold it into",
    "bottleneck": "bottleneck adapters insert new layers into the network; "
    "they cannot be folded into existing weights",
    "adalora": "AdaLoRA is not folded natively yet; load it with mode='peft'",
    "vera": "VeRA is not folded natively yet; load it with mode='peft'",
}


def require_foldable(method: str) -> None:
    if method not in FOLDABLE_METHODS:
        reason = _NOT_FOLDABLE.get(method, f"method {method!r} is not supported")
        raise UnsupportedMethodError(f"cannot fold a {method} adapter into base weights: {reason}")


_SUFFIXES = {
    "lora": (LORA_TOKEN_DELTA, *LORA_SUFFIXES),
    "ia3": IA3_SUFFIXES,
    "loha": LOHA_SUFFIXES,
    "lokr": LOKR_SUFFIXES,
    "oft": OFT_SUFFIXES,
    "boft": BOFT_SUFFIXES,
    "trainable_tokens": (TOKEN_DELTA,),
    "ln_tuning": LN_SUFFIXES,
}


def require_delta(adapter: AdapterTensors, label: str = "this adapter") -> None:
    """Refuse factors that are not a delta on the unchanged base (PiSSA and kin)."""
    init = base_rewriting_init(adapter.method, adapter.config)
    if init is not None:
        raise UnsupportedMethodError(base_rewriting_message(label, init))


def fold_groups(
    adapter: AdapterTensors,
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """The adapter's tensors by module, and the full tensors saved beside them."""
    require_foldable(adapter.method)
    require_delta(adapter)
    groups, rest = group_by_module(adapter.tensors, _SUFFIXES[adapter.method])
    wrapped = [
        m for m in groups if adapter.method == "lora" and is_parameter_group(adapter.config, m)
    ]
    if wrapped:
        raise UnsupportedMethodError(
            f"{owning_module(wrapped[0])} has LoRA on its parameters (target_parameters), which "
            "the registry checks but does not fold: which saved factors adapt which parameter "
            "follows PEFT's wrapping order; load it with mode='peft'"
        )
    return groups, rest


def module_updates(
    adapter: AdapterTensors,
    module: str,
    parts: Mapping[str, torch.Tensor],
    base_shapes: Mapping[str, torch.Size] | None = None,
) -> list[WeightUpdate]:
    """The updates one module's tensors make (its weight, and for some methods its bias)."""
    tokens, parts = split_tokens(parts)
    updates = token_updates(adapter.config, module, tokens)
    return updates + (_method_updates(adapter, module, parts, base_shapes) if parts else [])


def _method_updates(
    adapter: AdapterTensors,
    module: str,
    parts: Mapping[str, torch.Tensor],
    base_shapes: Mapping[str, torch.Size] | None,
) -> list[WeightUpdate]:
    groups = {module: parts}
    if adapter.method == "ln_tuning":
        return ln_updates(module, parts)
    if adapter.method == "lora":
        return lora_updates(adapter.config, groups)
    if adapter.method == "ia3":
        return ia3_updates(adapter.config, groups)
    if adapter.method == "loha":
        return loha_updates(adapter.config, groups, base_shapes)
    if adapter.method == "oft":
        return oft_updates(adapter.config, groups, base_shapes)
    if adapter.method == "boft":
        return boft_updates(adapter.config, groups, base_shapes)
    return lokr_updates(adapter.config, groups, base_shapes)


def replacement_updates(rest: Mapping[str, torch.Tensor]) -> list[WeightUpdate]:
    """Full tensors PEFT saved beside the factors (modules_to_save, copied embeddings)
    replace the base parameter, before any delta lands on it."""
    replacements = []
    for key, tensor in sorted(rest.items()):
        target = base_parameter(key)
        if target is not None:
            replacements.append(WeightUpdate(target, "replace", tensor))
    return replacements


def weight_updates(
    adapter: AdapterTensors, base_shapes: Mapping[str, torch.Size] | None = None
) -> list[WeightUpdate]:
    """Every change the adapter makes to base parameters.

    ``base_shapes`` (parameter name -> shape) lets LoHa/LoKr deltas take the
    shape of a convolution kernel; linear layers do not need it.
    """
    groups, rest = fold_groups(adapter)
    updates = replacement_updates(rest)
    for module, parts in sorted(groups.items()):
        updates.extend(module_updates(adapter, module, parts, base_shapes))
    return updates
