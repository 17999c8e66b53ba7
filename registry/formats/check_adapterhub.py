"""AdapterHub LoRA, IA3 and prefix tuning tensors against their config.

The ``adapters`` library keeps a LoRA on each wrapped linear layer as
``<module>.loras.<name>.lora_A`` [r, in] and ``...lora_B`` [out, r] (``<name>`` is the adapter's
name, ``lora_A`` has ``r * n`` rows on GPT-2's fused ``c_attn`` for ``n`` of q/k/v). IA3 is the
same architecture ("lora") with ``composition_mode: "scale"`` and ``r: 1``: only
``lora_B`` [out, 1] is saved. ``use_gating`` adds ``...gate.weight``/``gate.bias``; VeRA
(``vera_d``/``vera_b`` set) keeps its own vectors, whose shapes are not checked here.

Prefix tuning lives in one pool for the whole model:
``prefix_tuning.prefix_tunings.<name>.<location>.wte.weight`` [prefix_length, hidden] and
``control_trans.0`` [bottleneck, hidden] / ``control_trans.2`` [layers x 2 x hidden,
bottleneck] (weights and biases), or, once flattened, one vector ``control_trans``
[prefix_length x layers x 2 x hidden]; gates are ``prefix_gates.<name>.weight``/``bias``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import CheckResult, adapterhub_tensor, shape_of
from registry.formats.model import TensorInfo
from registry.formats.text import show

_LORA = re.compile(r"(?:^|\.)loras\.(?P<name>[^.]+)\.(?P<rest>.+)$")
_LORA_SHARED = re.compile(r"(?:^|\.)shared_parameters\.(?P<name>[^.]+)\.(?P<rest>.+)$")
_LORA_PARTS = ("lora_A", "lora_B", "gate.weight", "gate.bias")
_PREFIX = re.compile(r"(?:^|\.)prefix_tunings\.(?P<name>[^.]+)\.(?P<location>[^.]+)\.(?P<rest>.+)$")
_PREFIX_GATE = re.compile(r"(?:^|\.)prefix_gates\.(?P<name>[^.]+)\.(?P<rest>weight|bias)$")
_DEEP_PARTS = frozenset(
    {
        "wte.weight",
        "control_trans.0.weight",
        "control_trans.0.bias",
        "control_trans.2.weight",
        "control_trans.2.bias",
    }
)
_LAYER = re.compile(r"(?:^|\.)(\d+)(?:\.|$)")


def adapterhub_method(architecture: Mapping[str, Any]) -> str | None:
    """The method of an AdapterHub architecture config, or None when it is not read here."""
    kind = architecture.get("architecture")
    if kind in (None, "bottleneck"):
        return "bottleneck"
    if kind == "lora":
        return (
            "adapterhub_ia3"
            if architecture.get("composition_mode") == "scale"
            else ("adapterhub_lora")
        )
    if kind == "prefix_tuning":
        return "adapterhub_prefix_tuning"
    return None


def check_adapterhub_lora(
    document: Mapping[str, Any], tensors: Mapping[str, TensorInfo]
) -> CheckResult:
    """LoRA and IA3 (``composition_mode: "scale"``); ``document`` is the whole config file."""
    result = CheckResult()
    config: Mapping[str, Any] = document.get("config") or {}
    name = document.get("name")
    scale = config.get("composition_mode") == "scale"
    vera = config.get("vera_d") is not None or config.get("vera_b") is not None
    for flag, feature in (
        ("use_gating", "gating"),
        ("selfattn_lora", "selfattn"),
        ("intermediate_lora", "intermediate"),
        ("output_lora", "output"),
    ):
        if config.get(flag) is True:
            result.features.add(feature)
    if vera:
        result.features.add("vera")
    modules: dict[str, dict[str, TensorInfo]] = {}
    for key, info in sorted(tensors.items()):
        match = adapterhub_tensor(key, (_LORA, _LORA_SHARED), name, "LoRA", result)
        if match is None:
            continue
        rest = match.group("rest")
        if vera:
            continue  # VeRA's vectors and shared projections: layout not modelled
        if match.re is _LORA_SHARED or rest not in _LORA_PARTS:
            result.problems.append(f"tensor {show(key)}: unknown LoRA parameter {rest!r}")
            continue
        if rest.startswith("gate.") and not config.get("use_gating"):
            result.problems.append(f"tensor {show(key)}: a gate but use_gating is not set")
        modules.setdefault(key[: match.start()], {})[rest] = info
    rank = config.get("r")
    leave_out = config.get("leave_out") or []
    for module, parts in sorted(modules.items()):
        _check_lora_module(module, parts, rank, scale, leave_out, result)
    return result


def _check_lora_module(
    module: str,
    parts: Mapping[str, TensorInfo],
    rank: object,
    scale: bool,
    leave_out: list[int],
    result: CheckResult,
) -> None:
    label = f"LoRA at {show(module)}"
    layer = _layer(module)
    if layer is not None and layer in leave_out:
        result.problems.append(f"{label}: layer {layer} is in leave_out but has weights")
    a, b = parts.get("lora_A"), parts.get("lora_B")
    if scale:
        # IA3 saves one scaling vector per module, as a column.
        if a is not None:
            result.problems.append(
                f"{label}: lora_A present, but IA3 (composition_mode scale) saves only lora_B"
            )
        if b is None:
            result.problems.append(f"{label}: no lora_B scaling vector")
        elif len(b.shape) != 2 or b.shape[1] != 1:
            result.problems.append(f"{label}: lora_B has shape {shape_of(b)}, expected [out, 1]")
        return
    if a is None or b is None:
        found = ", ".join(sorted(parts)) or "nothing"
        result.problems.append(f"{label}: expected lora_A and lora_B, found {found}")
        return
    if len(a.shape) != 2 or len(b.shape) != 2:
        result.problems.append(
            f"{label}: lora_A {shape_of(a)} and lora_B {shape_of(b)} must be matrices"
        )
        return
    if isinstance(rank, int) and b.shape[1] != rank:
        result.problems.append(
            f"{label}: lora_B has shape {shape_of(b)}, expected [out, {rank}] (r {rank})"
        )
    if isinstance(rank, int) and (a.shape[0] % rank or a.shape[0] // rank not in (1, 2, 3)):
        # r rows, or r per attention matrix on a fused q/k/v projection (GPT-2's c_attn).
        result.problems.append(
            f"{label}: lora_A has shape {shape_of(a)}, expected [{rank}, in] (r {rank}, or "
            "r per matrix of a fused attention projection)"
        )


def check_adapterhub_prefix(
    document: Mapping[str, Any], tensors: Mapping[str, TensorInfo]
) -> CheckResult:
    """Prefix tuning, as saved (``flat`` false: the MLP that makes the prefix) or ejected."""
    result = CheckResult()
    config: Mapping[str, Any] = document.get("config") or {}
    name = document.get("name")
    flat = config.get("flat") is True
    result.features.add("flat" if flat else "reparametrised")
    locations: dict[str, dict[str, TensorInfo]] = {}
    for key, info in sorted(tensors.items()):
        match = adapterhub_tensor(key, (_PREFIX, _PREFIX_GATE), name, "prefix tuning", result)
        if match is None:
            continue
        if match.re is _PREFIX_GATE:
            if not config.get("use_gating"):
                result.problems.append(f"tensor {show(key)}: a gate but use_gating is not set")
            continue
        rest = match.group("rest")
        known = rest == "control_trans" if flat else rest in _DEEP_PARTS
        if not known:
            expected = "control_trans" if flat else "wte and control_trans.0/.2"
            result.problems.append(
                f"tensor {show(key)}: {rest!r} is not a parameter of a "
                f"{'flat' if flat else 'non-flat'} prefix (expected {expected})"
            )
            continue
        locations.setdefault(match.group("location"), {})[rest] = info
    if not locations:
        result.problems.append(f"no prefix tensors for adapter {name!r}")
    length = config.get("prefix_length")
    bottleneck = config.get("bottleneck_size")
    for location, parts in sorted(locations.items()):
        if flat:
            _check_flat(location, parts["control_trans"], length, result)
        else:
            _check_deep(location, parts, length, bottleneck, result)
    return result


def _check_flat(location: str, info: TensorInfo, length: object, result: CheckResult) -> None:
    if len(info.shape) != 1 or (isinstance(length, int) and info.shape[0] % (2 * length)):
        result.problems.append(
            f"prefix {location}: control_trans has shape {shape_of(info)}, expected "
            f"[prefix_length x layers x 2 x hidden] (prefix_length {length})"
        )


def _check_deep(
    location: str,
    parts: Mapping[str, TensorInfo],
    length: object,
    bottleneck: object,
    result: CheckResult,
) -> None:
    label = f"prefix {location}"
    missing = sorted(_DEEP_PARTS - set(parts))
    if missing:
        result.problems.append(f"{label}: missing {', '.join(missing)}")
        return
    wte, down, up = (
        parts["wte.weight"],
        parts["control_trans.0.weight"],
        parts["control_trans.2.weight"],
    )
    if len(wte.shape) != 2 or len(down.shape) != 2 or len(up.shape) != 2:
        result.problems.append(f"{label}: wte and control_trans weights must be matrices")
        return
    hidden = wte.shape[1]
    size = bottleneck if isinstance(bottleneck, int) else down.shape[0]
    expectations = (
        ("wte.weight", wte, (length if isinstance(length, int) else wte.shape[0], hidden)),
        ("control_trans.0.weight", down, (size, hidden)),
        ("control_trans.0.bias", parts["control_trans.0.bias"], (size,)),
    )
    for rest, info, shape in expectations:
        if info.shape != shape:
            result.problems.append(
                f"{label}: {rest} has shape {shape_of(info)}, expected {list(shape)} "
                f"(prefix_length {length}, bottleneck_size {size}, hidden {hidden})"
            )
    out = up.shape[0]
    if up.shape[1] != size or out % 2:
        result.problems.append(
            f"{label}: control_trans.2.weight has shape {shape_of(up)}, expected "
            f"[layers x 2 x hidden, {size}]"
        )
    if parts["control_trans.2.bias"].shape != (out,):
        result.problems.append(
            f"{label}: control_trans.2.bias has shape "
            f"{shape_of(parts['control_trans.2.bias'])}, expected [{out}]"
        )


def _layer(module: str) -> int | None:
    found = _LAYER.search(module)
    return int(found.group(1)) if found else None
