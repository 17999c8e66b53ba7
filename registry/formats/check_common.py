"""What every method check shares: the result type and PEFT tensor-key grouping.

PEFT saves a tuner's tensors as ``base_model.model.<module>.<suffix>``, where ``<module>`` is
the base model's own module path and ``<suffix>`` names the adapter parameter. Besides those a
file may legitimately hold full tensors of ``modules_to_save`` modules, biases (``bias`` set to
"all" or "<method>_only"), trainable-token deltas and embedding matrices PEFT saves alongside.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from registry.formats.dtypes import is_float
from registry.formats.matching import (
    describe_targets,
    in_modules_to_save,
    is_targeted,
    targets_known,
    trainable_token_count,
)
from registry.formats.model import TensorInfo
from registry.formats.text import show, show_shape

MODEL_PREFIX = "base_model.model."
# Embedding layers PEFT saves in full when they are targeted or resized.
EMBEDDING_MODULES: frozenset[str] = frozenset(
    {"embed_tokens", "lm_head", "wte", "word_embeddings", "embed_in", "embed_out", "shared"}
)
_TOKEN_DELTA = ".token_adapter.trainable_tokens_delta"

# module path -> parameter suffix -> tensor
Groups = dict[str, dict[str, TensorInfo]]


@dataclass
class CheckResult:
    """Problems found comparing tensors with their config, and features seen on the way."""

    problems: list[str] = field(default_factory=list)
    features: set[str] = field(default_factory=set)
    # Tensors allowed to hold zero elements (AdaLoRA ranks pruned to nothing).
    empty_ok: set[str] = field(default_factory=set)

    def add(self, other: CheckResult) -> None:
        self.problems.extend(other.problems)
        self.features |= other.features
        self.empty_ok |= other.empty_ok


def adapterhub_tensor(
    key: str, patterns: Sequence[re.Pattern[str]], name: object, what: str, result: CheckResult
) -> re.Match[str] | None:
    """The first of ``patterns`` that matches AdapterHub tensor ``key`` and names adapter
    ``name`` (the config's); None, with the problem recorded, for any other tensor."""
    match = next((m for m in (p.search(key) for p in patterns) if m is not None), None)
    if match is None:
        result.problems.append(f"tensor {show(key)}: not an AdapterHub {what} tensor")
        return None
    if match.group("name") != name:
        result.problems.append(
            f"tensor {show(key)}: belongs to adapter {match.group('name')!r} but the config "
            f"names {name!r}"
        )
        return None
    return match


def shape_of(info: TensorInfo) -> str:
    return show_shape(info.shape)


def group_peft_tensors(
    method: str,
    config: Mapping[str, Any],
    tensors: Mapping[str, TensorInfo],
    suffixes: tuple[str, ...],
    *,
    shared: Callable[[str], bool] | None = None,
    bias_mode: str | None = None,
) -> tuple[Groups, CheckResult]:
    """Split ``tensors`` into per-module groups of ``suffixes``; report keys that fit nowhere.

    ``shared`` accepts method-wide keys outside ``base_model.model.`` (VeRA's projections).
    ``bias_mode`` is the ``bias`` value that saves the biases of targeted modules only.
    """
    result = CheckResult()
    groups: Groups = {}
    ordered = sorted(suffixes, key=len, reverse=True)  # "x.weight" before "weight"
    for key, info in tensors.items():
        if shared is not None and shared(key):
            continue
        if not key.startswith(MODEL_PREFIX):
            result.problems.append(
                f"tensor {show(key)}: not a {method} tensor (PEFT names them "
                f"'{MODEL_PREFIX}<module>.<parameter>')"
            )
            continue
        rest = key[len(MODEL_PREFIX) :]
        suffix = next((s for s in ordered if rest.endswith("." + s)), None)
        if suffix is not None:
            groups.setdefault(rest[: -len(suffix) - 1], {})[suffix] = info
            if not is_float(info.dtype):
                # PEFT scales and adds these to float weights: integer or bool factors
                # fail (or truncate) when the adapter is loaded or merged.
                result.problems.append(
                    f"tensor {show(key)}: dtype {info.dtype}; {method} parameters must be "
                    "floating point (F16, BF16, F32, F64)"
                )
            continue
        feature = _auxiliary(config, rest, info, bias_mode, result)
        if feature is None:
            expected = ", ".join(suffixes)
            result.problems.append(
                f"tensor {show(key)}: not a {method} tensor (expected a name ending in one of "
                f"{expected}) and not inside a modules_to_save module"
            )
        elif feature:
            result.features.add(feature)
    _check_targets(method, config, groups, result)
    return groups, result


# Names of adapter parameters whatever the method (the config decides which apply).
_FACTOR_MARKERS = (
    ".lora_A.", ".lora_B.", ".lora_E", ".lora_embedding_", ".lora_magnitude_vector",
    ".hada_", ".lokr_", ".ia3_l", ".vera_lambda_",
)  # fmt: skip


def nonfloat_factors(tensors: Mapping[str, TensorInfo]) -> list[str]:
    """Adapter parameters stored in integer or bool dtypes, checked without a config."""
    return [
        f"tensor {show(key)}: dtype {info.dtype}; adapter parameters must be floating point "
        "(F16, BF16, F32, F64)"
        for key, info in sorted(tensors.items())
        if any(marker in key for marker in _FACTOR_MARKERS) and not is_float(info.dtype)
    ]


def _auxiliary(
    config: Mapping[str, Any],
    rest: str,
    info: TensorInfo,
    bias_mode: str | None,
    result: CheckResult,
) -> str | None:
    """The feature an extra (non-method) tensor shows, "" if allowed silently, None if not."""
    if in_modules_to_save(config, rest):
        return "modules_to_save"
    if rest.endswith(_TOKEN_DELTA) and config.get("trainable_token_indices"):
        module = rest[: -len(_TOKEN_DELTA)]
        count = trainable_token_count(config, module)
        if count is not None and (len(info.shape) != 2 or info.shape[0] != count):
            result.problems.append(
                f"module {show(module)}: trainable_tokens_delta has shape {shape_of(info)}, "
                f"expected [{count}, hidden] for the {count} trainable_token_indices"
            )
        return "trainable_tokens"
    bias = config.get("bias", "none")
    if rest.endswith(".bias") and bias == "all":
        return ""
    if rest.endswith(".bias") and bias == bias_mode:
        module = rest[: -len(".bias")].removesuffix(".base_layer")
        return "" if is_targeted(config, module) else None
    if rest.endswith(".base_layer.weight"):
        # A targeted embedding saved in full next to its adapter (save_embedding_layers).
        module = rest[: -len(".base_layer.weight")]
        return "" if is_targeted(config, module) else None
    parts = rest.split(".")
    if len(parts) >= 2 and parts[-1] == "weight" and parts[-2] in EMBEDDING_MODULES:
        return ""
    return None


def _check_targets(
    method: str, config: Mapping[str, Any], groups: Groups, result: CheckResult
) -> None:
    if not targets_known(config):
        return
    stray = [module for module in sorted(groups) if not is_targeted(config, module)]
    for module in stray:
        result.problems.append(
            f"module {show(module)}: has {method} tensors but {describe_targets(config)} "
            "does not select it"
        )


def rank_label(value: int, pattern_key: str | None) -> str:
    return f"r is {value}" + (f" (rank_pattern {pattern_key!r})" if pattern_key else "")
