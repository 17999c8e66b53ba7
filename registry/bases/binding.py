"""Which base parameter each adapter tensor binds to, and the shape it needs there.

Torch-free: works on the shapes a safetensors header declares, so the check runs
before any weights are read. An adapter tensor that binds to nothing is the
silent no-op that loaders hit when target names do not match the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.formats.matching import is_feedforward
from registry.formats.target_parameters import is_parameter_group, parameter_targets

PEFT_PREFIX = "base_model.model."

_SUFFIXES: dict[str, tuple[str, ...]] = {
    "lora": (
        "token_adapter.trainable_tokens_delta",
        "lora_A.weight",
        "lora_B.weight",
        "lora_B.bias",
        "lora_embedding_A",
        "lora_embedding_B",
        "lora_magnitude_vector",
    ),
    "adalora": ("lora_A", "lora_B", "lora_E"),
    "ia3": ("ia3_l",),
    "loha": ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2"),
    "lokr": ("lokr_w1", "lokr_w1_a", "lokr_w1_b", "lokr_w2", "lokr_w2_a", "lokr_w2_b", "lokr_t2"),
    "vera": ("vera_lambda_b", "vera_lambda_d"),
    "trainable_tokens": ("trainable_tokens_delta",),
    "ln_tuning": ("ln_tuning_layers.weight", "ln_tuning_layers.bias"),
}
_TOKENS = ("token_adapter.trainable_tokens_delta", "trainable_tokens_delta")
MODULE_METHODS = tuple(_SUFFIXES)
Dims = tuple[int | None, ...]


@dataclass(frozen=True)
class Requirement:
    """A base parameter an adapter module needs, with the shape it must have.

    ``dims`` entries of None are not constrained; ``numel`` constrains the total size
    where only that is known (LoHa/LoKr on convolutions).
    """

    module: str
    parameter: str
    dims: tuple[int | None, ...] | None = None
    numel: int | None = None
    min_rows: int | None = None  # trainable tokens: the highest token index + 1

    def describe(self) -> str:
        if self.min_rows is not None and self.dims is not None:
            return f"at least {self.min_rows} rows of {self.dims[-1]}"
        if self.dims is not None:
            return "[" + ", ".join("*" if d is None else str(d) for d in self.dims) + "]"
        return f"{self.numel} elements"

    def accepts(self, shape: tuple[int, ...]) -> bool:
        if self.numel is not None and math.prod(shape) != self.numel:
            return False
        if self.min_rows is not None and (not shape or shape[0] < self.min_rows):
            return False
        if self.dims is None:
            return True
        if len(self.dims) == 2 and len(shape) > 2 and self.dims[1] is not None:
            # A conv kernel [out, in, *k] flattened by methods that treat it as a matrix.
            shape = (shape[0], math.prod(shape[1:]))
        if len(shape) != len(self.dims):
            return False
        return all(
            want is None or want == have for want, have in zip(self.dims, shape, strict=True)
        )


def _groups(
    shapes: Mapping[str, tuple[int, ...]], suffixes: tuple[str, ...]
) -> tuple[dict[str, dict[str, tuple[int, ...]]], dict[str, tuple[int, ...]]]:
    groups: dict[str, dict[str, tuple[int, ...]]] = {}
    rest: dict[str, tuple[int, ...]] = {}
    for key, shape in shapes.items():
        rest_key = key[len(PEFT_PREFIX) :] if key.startswith(PEFT_PREFIX) else None
        for suffix in suffixes:
            if rest_key is not None and rest_key.endswith("." + suffix):
                groups.setdefault(rest_key[: -len(suffix) - 1], {})[suffix] = shape
                break
        else:
            rest[key] = shape
    return groups, rest


def _module_requirement(
    method: str, config: Mapping[str, Any], module: str, parts: Mapping[str, tuple[int, ...]]
) -> Requirement:
    param = f"{module}.weight"
    transposed = bool(config.get("fan_in_fan_out"))
    unknown: Dims = (None, None)
    a: Dims
    b: Dims
    dims: Dims
    if method in ("lora", "adalora"):
        if "lora_embedding_A" in parts:
            a, b = parts["lora_embedding_A"], parts.get("lora_embedding_B", unknown)
            return Requirement(module, param, (a[1], b[0]))
        a = parts.get("lora_A.weight") or parts.get("lora_A") or unknown
        b = parts.get("lora_B.weight") or parts.get("lora_B") or unknown
        if len(a) > 2:
            return Requirement(module, param, (b[0], a[1], *a[2:]))
        dims = (b[0], a[1])
        return Requirement(module, param, dims[::-1] if transposed else dims)
    if method == "ia3":
        vector = parts["ia3_l"]
        if len(vector) > 2:  # conv: [1, C, 1, 1]
            channels = vector[1]
            ff = is_feedforward(config, module)
            return Requirement(module, param, (None, channels) if ff else (channels, None))
        dims = (None, vector[1]) if is_feedforward(config, module) else (vector[0], None)
        return Requirement(module, param, dims[::-1] if transposed else dims)
    if method == "loha":
        out, inner = parts["hada_w1_a"][0], parts["hada_w1_b"][-1]
        if "hada_t1" in parts:
            return Requirement(module, param, (out, None))
        return Requirement(module, param, (out, inner))
    if method == "lokr":
        w1 = parts.get("lokr_w1") or (
            parts.get("lokr_w1_a", (1,))[0],
            parts.get("lokr_w1_b", (1, 1))[-1],
        )
        if "lokr_w2" in parts:
            w2 = parts["lokr_w2"]
        else:
            w2 = (parts.get("lokr_w2_a", (1,))[0], parts.get("lokr_w2_b", (1, 1))[-1])
        numel = math.prod(w1) * math.prod(w2)
        return Requirement(module, param, None, numel=numel)
    # vera: lambda_b is one scale per output unit.
    lambda_out: int | None = parts.get("vera_lambda_b", (None,))[0]
    vera: Dims = (lambda_out, None)
    return Requirement(module, param, vera[::-1] if transposed else vera)


def _extra_requirements(
    config: Mapping[str, Any], module: str, parts: Mapping[str, tuple[int, ...]]
) -> list[Requirement]:
    """Trainable tokens replace rows of the module's weight: the token ids must exist."""
    shape = next((parts[s] for s in _TOKENS if s in parts), None)
    if shape is None:
        return []
    indices = config.get("token_indices") or config.get("trainable_token_indices")
    if isinstance(indices, dict):
        named = [v for k, v in indices.items() if module == k or module.endswith("." + k)]
        indices = (
            named[0] if named else (next(iter(indices.values())) if len(indices) == 1 else None)
        )
    top = max(indices) + 1 if isinstance(indices, list) and indices else None
    dim = shape[-1] if shape else None
    return [Requirement(module, f"{module}.weight", (None, dim), min_rows=top)]


def requirements(
    method: str, config: Mapping[str, Any], shapes: Mapping[str, tuple[int, ...]]
) -> list[Requirement]:
    """Every base parameter the adapter needs, with its shape; empty for prompt methods."""
    if method not in _SUFFIXES:
        return []
    groups, rest = _groups(shapes, _SUFFIXES[method])
    found: list[Requirement] = []
    for module, parts in sorted(groups.items()):
        found.extend(_extra_requirements(config, module, parts))
        parts = {k: v for k, v in parts.items() if k not in _TOKENS}
        if method == "lora" and is_parameter_group(config, module):
            # Which wrapper level adapts which parameter is PEFT's wrapping order: require
            # that the parameters exist; PEFT checks their shapes when it loads them.
            found.extend(Requirement(module, p) for p in parameter_targets(config, module))
        elif method == "ln_tuning":
            # A full copy of the module's parameters: each replaces one of the same shape.
            found.extend(
                Requirement(module, f"{module}.{k.rsplit('.', 1)[-1]}", tuple(v))
                for k, v in sorted(parts.items())
            )
        elif parts:
            found.append(_module_requirement(method, config, module, parts))
    for key, shape in sorted(rest.items()):
        if key.startswith(PEFT_PREFIX):
            # modules_to_save copies and saved embeddings replace a base tensor of that shape.
            param = key[len(PEFT_PREFIX) :].replace(".base_layer.", ".")
            found.append(Requirement(param.rsplit(".", 1)[0], param, tuple(shape)))
    return list(dict.fromkeys(found))  # nested parameter wrappers repeat theirs
