"""LoRA (and DoRA, rsLoRA) tensors against their config.

Per targeted module: ``lora_A.weight`` [r, in] (conv: [r, in, *kernel]) and ``lora_B.weight``
[out, r] (conv: [out, r, 1, ...]); an embedding has ``lora_embedding_A`` [r, vocab] and
``lora_embedding_B`` [dim, r]. DoRA adds ``lora_magnitude_vector`` [out] (conv: [1, out, 1, ...]);
``lora_bias`` adds ``lora_B.bias`` [out]. ``r`` comes from ``rank_pattern`` when a key matches.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.formats.check_common import (
    MODEL_PREFIX,
    CheckResult,
    group_peft_tensors,
    rank_label,
    shape_of,
)
from registry.formats.check_tokens import tied_outputs
from registry.formats.matching import pattern_value
from registry.formats.model import TensorInfo
from registry.formats.target_parameters import is_parameter_group
from registry.formats.text import show

DEFAULT_R = 8
A, B, BIAS = "lora_A.weight", "lora_B.weight", "lora_B.bias"
EMB_A, EMB_B = "lora_embedding_A", "lora_embedding_B"
MAGNITUDE, MAGNITUDE_W = "lora_magnitude_vector", "lora_magnitude_vector.weight"
SUFFIXES = (A, B, BIAS, EMB_A, EMB_B, MAGNITUDE, MAGNITUDE_W)


def check_lora(config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]) -> CheckResult:
    groups, result = group_peft_tensors(
        "lora", _with_tied_outputs(config, tensors), tensors, SUFFIXES, bias_mode="lora_only"
    )
    _check_tied(config, groups, result)
    for flag, feature in (
        ("use_rslora", "rslora"),
        ("use_dora", "dora"),
        ("fan_in_fan_out", "fan_in_fan_out"),
        ("lora_bias", "lora_bias"),
    ):
        if config.get(flag) is True:
            result.features.add(feature)
    if config.get("rank_pattern"):
        result.features.add("rank_pattern")
    if config.get("alpha_pattern"):
        result.features.add("alpha_pattern")
    for module, parts in sorted(groups.items()):
        if is_parameter_group(config, module):
            _check_parameter_group(config, module, parts, result)
        else:
            _check_module(config, module, parts, result)
    return result


def _check_parameter_group(
    config: Mapping[str, Any], module: str, parts: dict[str, TensorInfo], result: CheckResult
) -> None:
    """Factors of a parameter: A [r * experts, in], B [out, r * experts]."""
    result.features.add("target_parameters")
    label = f"module {show(module)}"
    a, b = parts.get(A), parts.get(B)
    if a is None or b is None or len(a.shape) != 2 or len(b.shape) != 2:
        shown = ", ".join(f"{k} {shape_of(v)}" for k, v in sorted(parts.items()))
        result.problems.append(f"{label}: expected {A} [r x experts, in] and {B}, has {shown}")
        return
    r = config.get("r", DEFAULT_R)
    if a.shape[0] != b.shape[1] or not isinstance(r, int) or a.shape[0] % r:
        result.problems.append(
            f"{label}: {A} {shape_of(a)} and {B} {shape_of(b)} do not share a rank that is a "
            f"multiple of r ({r}, one rank per expert)"
        )


def _with_tied_outputs(
    config: Mapping[str, Any], tensors: Mapping[str, TensorInfo]
) -> Mapping[str, Any]:
    """Modules PEFT adapts although ``target_modules`` does not name them: with
    ``ensure_weight_tying`` the output layer tied to a targeted embedding, and the modules
    owning the parameters ``target_parameters`` names."""
    targets = config.get("target_modules")
    if targets is not None and not isinstance(targets, list):
        return config
    modules = sorted(
        {k[len(MODEL_PREFIX) :].rsplit(".", 2)[0] for k in tensors if k.startswith(MODEL_PREFIX)}
    )
    extra = [m for m in modules if is_parameter_group(config, m)]
    if config.get("ensure_weight_tying") is True:
        extra += tied_outputs(modules)
    return {**config, "target_modules": (targets or []) + extra} if extra else config


def _check_tied(
    config: Mapping[str, Any], groups: dict[str, dict[str, TensorInfo]], result: CheckResult
) -> None:
    if config.get("ensure_weight_tying") is not True:
        return
    embeddings = [p for p in groups.values() if EMB_A in p and EMB_B in p]
    for module in tied_outputs(sorted(groups)):
        parts = groups[module]
        if A not in parts or B not in parts or len(embeddings) != 1:
            continue
        emb = embeddings[0]
        if parts[A].shape != emb[EMB_B].shape[::-1] or parts[B].shape != emb[EMB_A].shape[::-1]:
            result.problems.append(
                f"module {show(module)}: ensure_weight_tying ties it to the embedding, but its "
                f"lora_A/lora_B {shape_of(parts[A])}/{shape_of(parts[B])} are not the "
                "embedding's factors transposed"
            )


def _check_module(
    config: Mapping[str, Any], module: str, parts: dict[str, TensorInfo], result: CheckResult
) -> None:
    label = f"module {show(module)}"
    problems = result.problems
    if (A in parts or B in parts) and (EMB_A in parts or EMB_B in parts):
        problems.append(f"{label}: mixes lora_A/lora_B with lora_embedding_A/B")
        return
    embedding = EMB_A in parts or EMB_B in parts
    a_name, b_name = (EMB_A, EMB_B) if embedding else (A, B)
    a, b = parts.get(a_name), parts.get(b_name)
    if a is None and b is None:
        problems.append(f"{label}: has {', '.join(sorted(parts))} but no {A} / {B}")
        return
    if a is None or b is None:
        have, missing = (a_name, b_name) if b is None else (b_name, a_name)
        problems.append(f"{label}: has {have} but no {missing}")
    if embedding:
        result.features.add("embedding")
    found = pattern_value(config.get("rank_pattern"), module)
    r = found[1] if found else config.get("r", DEFAULT_R)
    key = found[0] if found else None
    if a is not None:
        if len(a.shape) < 2:
            problems.append(f"{label}: {a_name} has shape {shape_of(a)}, expected [r, in]")
        elif a.shape[0] != r:
            problems.append(
                f"{label}: {a_name} has rank {a.shape[0]} (shape {shape_of(a)}) "
                f"but {rank_label(r, key)}"
            )
        if len(a.shape) > 2:
            result.features.add("conv")
    if b is not None:
        if len(b.shape) < 2:
            problems.append(f"{label}: {b_name} has shape {shape_of(b)}, expected [out, r]")
        elif b.shape[1] != r:
            problems.append(
                f"{label}: {b_name} has rank {b.shape[1]} (shape {shape_of(b)}) "
                f"but {rank_label(r, key)}"
            )
        elif any(d != 1 for d in b.shape[2:]):
            problems.append(f"{label}: {b_name} has shape {shape_of(b)}, expected a 1x1 kernel")
    if a is not None and b is not None and len(a.shape) != len(b.shape):
        problems.append(
            f"{label}: {a_name} {shape_of(a)} and {b_name} {shape_of(b)} differ in dimensions"
        )
    out = b.shape[0] if b is not None and len(b.shape) >= 2 else None
    _check_magnitude(config, label, parts, out, result)
    _check_bias(config, label, parts, out, result)


def _check_magnitude(
    config: Mapping[str, Any],
    label: str,
    parts: dict[str, TensorInfo],
    out: int | None,
    result: CheckResult,
) -> None:
    name = MAGNITUDE if MAGNITUDE in parts else MAGNITUDE_W
    magnitude = parts.get(name)
    if config.get("use_dora") is not True:
        if magnitude is not None:
            result.problems.append(f"{label}: has {name} but use_dora is false")
        return
    if magnitude is None:
        result.problems.append(f"{label}: use_dora is true but {MAGNITUDE} is missing")
        return
    if out is None:
        return
    shape = magnitude.shape
    linear_ok = shape == (out,)
    # A convolution keeps the magnitude broadcastable over its output channels.
    conv_ok = (
        len(shape) > 2 and shape[1] == out and all(d == 1 for i, d in enumerate(shape) if i != 1)
    )
    if not (linear_ok or conv_ok):
        result.problems.append(
            f"{label}: {name} has shape {shape_of(magnitude)}, expected [{out}] "
            "(the output size of lora_B)"
        )


def _check_bias(
    config: Mapping[str, Any],
    label: str,
    parts: dict[str, TensorInfo],
    out: int | None,
    result: CheckResult,
) -> None:
    bias = parts.get(BIAS)
    if bias is None:
        return
    if config.get("lora_bias") is not True:
        result.problems.append(f"{label}: has {BIAS} but lora_bias is false")
    elif out is not None and bias.shape != (out,):
        result.problems.append(f"{label}: {BIAS} has shape {shape_of(bias)}, expected [{out}]")
