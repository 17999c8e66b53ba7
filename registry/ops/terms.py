"""One adapted module as a scaled low-rank term, and back to PEFT LoRA tensors.

Every additive method reduces, per module, to a delta ``b @ a`` in the orientation of
LoRA's own product ``B @ A``: [out, in] for linear layers (whatever ``fan_in_fan_out`` says
about the base weight's storage), [dim, vocab] for embeddings, and [out, in * prod(kernel)]
for convolutions (A's kernel flattened, B's 1x1 kernel dropped). The term carries the
scaling (alpha / r, rsLoRA, patterns) inside ``a``, so terms from different adapters add
directly. LoHa and LoKr deltas are not low-rank products; they are factored exactly (to
their numerical rank) from the dense delta of that one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch

from registry.errors import UnsupportedMethodError
from registry.ops.fold import require_delta
from registry.ops.lora import LORA_SUFFIXES, lora_factors
from registry.ops.lowrank import LowRank, factor_dense
from registry.ops.lycoris import (
    LOHA_SUFFIXES,
    LOKR_SUFFIXES,
    loha_delta,
    lokr_delta,
    lycoris_scaling,
)
from registry.ops.tensors import PEFT_PREFIX, AdapterTensors, group_by_module
from registry.ops.updates import Layout

ADDITIVE_METHODS = ("lora", "loha", "lokr")
_SUFFIXES = {"lora": LORA_SUFFIXES, "loha": LOHA_SUFFIXES, "lokr": LOKR_SUFFIXES}


@dataclass(frozen=True)
class Term:
    """One module's delta as scaled factors, with what is needed to write it back."""

    module: str
    low: LowRank  # low.b @ low.a is the delta, scaling included
    layout: Layout
    kernel: tuple[int, ...] = ()  # a convolution's kernel size; () otherwise
    bias: torch.Tensor | None = None  # scaled bias delta (lora_bias)
    magnitude: torch.Tensor | None = None  # DoRA magnitude, carried only by resize

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.low.b.shape[0]), int(self.low.a.shape[1])


def module_groups(
    adapter: AdapterTensors,
) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """The adapter's tensors by module, and the full tensors saved beside them."""
    if adapter.method not in _SUFFIXES:
        raise UnsupportedMethodError(
            f"{adapter.method} adapters have no additive low-rank delta to work on; "
            f"this works on {', '.join(ADDITIVE_METHODS)}"
        )
    require_delta(adapter)
    return group_by_module(adapter.tensors, _SUFFIXES[adapter.method])


def module_term(adapter: AdapterTensors, module: str, parts: Mapping[str, torch.Tensor]) -> Term:
    if adapter.method == "lora":
        factors = lora_factors(adapter.config, module, parts)
        kernel = tuple(int(d) for d in factors.a.shape[2:]) if factors.layout == "conv" else ()
        a = factors.a.to(torch.float32).flatten(1) * factors.scaling
        b = factors.b.to(torch.float32).flatten(1)
        bias = None if factors.bias is None else factors.bias.to(torch.float32) * factors.scaling
        return Term(module, LowRank(b, a), factors.layout, kernel, bias, factors.magnitude)
    scaling = lycoris_scaling(adapter.config, module, parts)
    compute = loha_delta if adapter.method == "loha" else lokr_delta
    delta = compute(parts, scaling, None)
    if delta.dim() != 2:
        raise UnsupportedMethodError(
            f"{module}: {adapter.method} on a convolution cannot be turned into LoRA factors "
            "without the base kernel's shape; only linear layers are supported"
        )
    return Term(module, factor_dense(delta), "linear")


def term_tensors(term: Term) -> dict[str, torch.Tensor]:
    """PEFT LoRA tensors for ``term`` (with scaling 1: alpha = r)."""
    key = f"{PEFT_PREFIX}{term.module}"
    a, b = term.low.a.contiguous(), term.low.b.contiguous()
    out: dict[str, torch.Tensor] = {}
    if term.layout == "embedding":
        out[f"{key}.lora_embedding_A"] = a
        out[f"{key}.lora_embedding_B"] = b
    elif term.layout == "conv":
        rank = int(a.shape[0])
        out[f"{key}.lora_A.weight"] = a.reshape(rank, -1, *term.kernel).contiguous()
        out[f"{key}.lora_B.weight"] = b.reshape(int(b.shape[0]), rank, *([1] * len(term.kernel)))
    else:
        out[f"{key}.lora_A.weight"] = a
        out[f"{key}.lora_B.weight"] = b
    if term.bias is not None:
        out[f"{key}.lora_B.bias"] = term.bias.contiguous()
    if term.magnitude is not None:
        out[f"{key}.lora_magnitude_vector"] = term.magnitude.contiguous()
    return out
