"""AdapterHub bottleneck adapter tensors against their config.

The ``adapters`` library saves, for each adapter location (after attention: ``mh_adapter``,
after the feed-forward block: ``output_adapter``) of each layer,
``<location>.adapters.<name>.adapter_down.<i>.weight`` [down, hidden] (``<i>`` is 1 when a
LayerNorm comes first), ``...adapter_up.weight`` [hidden, down] and their biases, where
``down = max(1, int(hidden // reduction_factor))`` and ``reduction_factor`` may map layer
indexes (as strings) or "default" to factors. ``leave_out`` lists layers without adapters.
Invertible adapters live under ``invertible_adapters.<name>``; PHM layers (Compacter) keep
their own parameter layout, whose shapes are not checked here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, adapterhub_tensor, shape_of
from registry.formats.model import TensorInfo
from registry.formats.text import show

# Legacy adapter-transformers module names are renamed to "adapters" on load.
_ADAPTER = re.compile(
    r"(?:^|\.)(?:(?:attention|layer)_text_(?:task|lang)_)?adapters\.(?P<name>[^.]+)\.(?P<rest>.+)$"
)
_SIDE = re.compile(r"(?:^|\.)(?P<kind>invertible_adapters|shared_parameters)\.(?P<name>[^.]+)\.")
_DOWN = re.compile(r"adapter_down\.(?P<index>\d+)\.(?P<param>weight|bias)")
_LAYER = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")
_PARTS = ("adapter_down.", "adapter_up.", "adapter_norm_before.", "adapter_norm_after.", "gate.")


def check_bottleneck(document: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> CheckResult:
    """``document`` is the whole adapter_config.json; the architecture is under "config"."""
    result = CheckResult()
    config: Mapping[str, Any] = document.get("config") or {}
    name = document.get("name")
    _features(config, result)
    locations: dict[str, dict[str, TensorInfo]] = {}
    for key, info in sorted(tensors.items()):
        match = adapterhub_tensor(key, (_ADAPTER, _SIDE), name, "bottleneck", result)
        if match is None:
            continue
        if match.re is _SIDE:
            if match.group("kind") == "invertible_adapters" and not config.get("inv_adapter"):
                result.problems.append(
                    f"tensor {show(key)}: invertible adapter weights but inv_adapter is not set"
                )
            continue
        rest = match.group("rest")
        if rest != "scaling" and not rest.startswith(_PARTS):
            result.problems.append(f"tensor {show(key)}: unknown bottleneck parameter {rest!r}")
            continue
        locations.setdefault(key[: match.start()], {})[rest] = info
    if config.get("phm_layer") is True:
        return result
    hidden = document.get("hidden_size")
    leave_out = config.get("leave_out") or []
    for location, parts in sorted(locations.items()):
        _check_location(config, location, parts, hidden, leave_out, result)
    return result


def _features(config: Mapping[str, Any], result: CheckResult) -> None:
    for flag, feature in (
        ("mh_adapter", "mh_adapter"),
        ("output_adapter", "output_adapter"),
        ("is_parallel", "parallel"),
        ("phm_layer", "phm"),
        ("use_gating", "gating"),
    ):
        if config.get(flag) is True:
            result.features.add(feature)
    if config.get("inv_adapter"):
        result.features.add("invertible")


def _check_location(
    config: Mapping[str, Any],
    location: str,
    parts: dict[str, TensorInfo],
    hidden: object,
    leave_out: list[int],
    result: CheckResult,
) -> None:
    label = f"adapter at {show(location)}"
    layer_match = _LAYER.search(location)
    layer = int(layer_match.group(1)) if layer_match else None
    if layer is not None and layer in leave_out:
        result.problems.append(f"{label}: layer {layer} is in leave_out but has adapter weights")
    linear = [
        (rest, info)
        for rest, info in parts.items()
        if (m := _DOWN.fullmatch(rest)) and m.group("param") == "weight" and len(info.shape) == 2
    ]
    up = parts.get("adapter_up.weight")
    if len(linear) != 1 or up is None:
        result.problems.append(
            f"{label}: expected one adapter_down linear weight and adapter_up.weight, found "
            f"{', '.join(sorted(parts)) or 'nothing'}"
        )
        return
    down_name, down = linear[0]
    width = hidden if isinstance(hidden, int) and not isinstance(hidden, bool) else up.shape[0]
    factor = _reduction_factor(config.get("reduction_factor"), layer)
    if factor is None:
        result.problems.append(f"{label}: reduction_factor gives no factor for layer {layer}")
        size = down.shape[0]
    else:
        size = max(1, int(width // factor))
    expectations = (
        (down_name, down, (size, width), "[hidden // reduction_factor, hidden]"),
        ("adapter_up.weight", up, (width, size), "[hidden, hidden // reduction_factor]"),
    )
    for rest, info, shape, how in expectations:
        if info.shape != shape:
            result.problems.append(
                f"{label}: {rest} has shape {shape_of(info)}, expected {list(shape)} = {how} "
                f"(hidden_size {width}, reduction_factor {factor:g})"
            )
    biases = ((down_name.replace(".weight", ".bias"), size), ("adapter_up.bias", width))
    for rest, length in biases:
        bias = parts.get(rest)
        if bias is not None and bias.shape != (length,):
            result.problems.append(
                f"{label}: {rest} has shape {shape_of(bias)}, expected [{length}]"
            )


def _reduction_factor(value: object, layer: int | None) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, dict):
        chosen = value.get(str(layer)) if layer is not None else None
        if chosen is None:
            chosen = value.get("default")
        if isinstance(chosen, (int, float)) and not isinstance(chosen, bool):
            return float(chosen)
    return None
