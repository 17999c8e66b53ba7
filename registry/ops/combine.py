"""Combining adapters into one: exact concatenation, factored SVD, task-vector merging.

Module by module, each parent contributes ``w_i * delta_i`` (its own scaling included, see
``terms``). Parents may have different ranks and target different modules: a module gets
the terms of the parents that adapt it.

- ``cat``: the factors side by side; the delta is exactly ``sum_i w_i delta_i``.
- ``svd``: the same sum truncated to rank r from the stacked factors (``lowrank.truncate``),
  never forming the dense delta.
- ``linear``, ``ties``, ``dare_linear``, ``dare_ties``, ``magnitude_prune``: on the dense
  delta of one module at a time (``task_merge``), then a truncated SVD back to rank r.

IA3 adapters scale activations rather than add to weights; they combine by the weighted
sum of their scaling vectors (``linear``), as PEFT does.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from registry.errors import IncompatibleAdaptersError, UnsupportedMethodError
from registry.formats.matching import is_feedforward
from registry.ops.ia3 import IA3_SUFFIXES
from registry.ops.lowrank import LowRank, Truncation, stack, truncate, truncate_dense
from registry.ops.methods import CombineSpec
from registry.ops.peft_config import ia3_config, lora_config
from registry.ops.produced import (
    ModuleResult,
    Produced,
    carry_full_tensors,
    energy_parameters,
)
from registry.ops.task_merge import merge_dense
from registry.ops.tensors import PEFT_PREFIX, AdapterTensors, group_by_module
from registry.ops.terms import ADDITIVE_METHODS, Term, module_groups, module_term, term_tensors
from registry.ops.threads import with_operator_threads
from registry.progress import NoProgress, Progress

DORA_REFUSAL = (
    "DoRA rescales every output row of W + delta to a learned magnitude, so its effect "
    "depends on the base weights and is not a low-rank delta that can be added to others; "
    "merge it into the base (`adapters merge`) and extract a LoRA from the result "
    "(`adapters extract`), then combine that"
)


@with_operator_threads
def combine(
    parents: Sequence[AdapterTensors],
    spec: CombineSpec,
    *,
    labels: Sequence[str] | None = None,
    base_model: str | None = None,
    revision: str | None = None,
    progress: Progress | None = None,
) -> Produced:
    """Combine ``parents`` (one weight each in ``spec``) into a new adapter.

    ``labels`` name the parents in error messages; ``base_model``/``revision`` go into the
    new adapter's config.
    """
    labels = list(labels or [f"adapter {i + 1}" for i in range(len(parents))])
    spec.validate(len(parents))
    methods = {p.method for p in parents}
    if methods == {"ia3"}:
        if spec.method != "linear":
            raise UnsupportedMethodError(
                "IA3 adapters scale activations; they combine by the weighted sum of their "
                "scaling vectors: use method 'linear'"
            )
        return _combine_ia3(parents, spec, labels, base_model, revision)
    _check_additive(parents, labels)
    return _combine_additive(parents, spec, labels, base_model, revision, progress or NoProgress())


def _check_additive(parents: Sequence[AdapterTensors], labels: Sequence[str]) -> None:
    problems = []
    for parent, label in zip(parents, labels, strict=True):
        if parent.method == "ia3":
            problems.append(
                f"{label} is IA3, which scales weights while the others add to them; "
                "combine IA3 adapters only with IA3 adapters"
            )
        elif parent.method not in ADDITIVE_METHODS:
            problems.append(
                f"{label} is {parent.method}: combine works on LoRA, LoHa, LoKr and IA3 adapters"
            )
        elif parent.method == "lora" and parent.config.get("use_dora"):
            raise UnsupportedMethodError(f"cannot combine {label}: {DORA_REFUSAL}")
    if problems:
        raise UnsupportedMethodError("cannot combine: " + "; ".join(problems))
    flags = {bool(p.config.get("fan_in_fan_out")) for p in parents if p.method == "lora"}
    if len(flags) > 1:
        mixed = ", ".join(
            f"{label}={bool(p.config.get('fan_in_fan_out'))}"
            for p, label in zip(parents, labels, strict=True)
            if p.method == "lora"
        )
        raise IncompatibleAdaptersError(
            f"the adapters disagree on fan_in_fan_out ({mixed}): it says whether the base "
            "layers store weights transposed (GPT-2 Conv1D), so adapters for one base must agree"
        )


def config_rank(config: Mapping[str, Any]) -> int:
    """The largest rank a config declares (``r`` and its ``rank_pattern``)."""
    pattern = config.get("rank_pattern") or {}
    ranks = [int(config.get("r", 8))] + [int(v) for v in pattern.values()]
    return max(ranks)


def _seed_generator(seed: int, module: str, index: int) -> torch.Generator:
    # One stream per (module, parent): the result does not depend on module order.
    digest = hashlib.sha256(f"{seed}:{module}:{index}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") >> 1)


def _same_layout(module: str, terms: Sequence[tuple[int, Term]], labels: Sequence[str]) -> None:
    first_index, first = terms[0]
    for index, term in terms[1:]:
        if (term.layout, term.kernel, term.shape) != (first.layout, first.kernel, first.shape):
            raise IncompatibleAdaptersError(
                f"{module}: {labels[first_index]} adapts it as {first.layout} "
                f"{list(first.shape)}{list(first.kernel) or ''}, {labels[index]} as "
                f"{term.layout} {list(term.shape)}{list(term.kernel) or ''}; adapters of one "
                "base model must agree"
            )


def _reduce(
    spec: CombineSpec,
    module: str,
    weighted: Sequence[tuple[int, float, Term]],
    rank: int,
) -> tuple[LowRank, Truncation | None]:
    if spec.method == "cat":
        return stack([(w, t.low) for _, w, t in weighted]), None
    if spec.method == "svd":
        found = truncate(stack([(w, t.low) for _, w, t in weighted]), rank)
        return found.low, found
    merged = merge_dense(
        spec.method,
        [t.low.dense() for _, _, t in weighted],
        [w for _, w, _ in weighted],
        density=spec.density if spec.density is not None else 1.0,
        majority_sign=spec.majority_sign,
        generators=[_seed_generator(spec.seed, module, i) for i, _, _ in weighted],
    )
    found = truncate_dense(merged, rank)
    return found.low, found


def _combine_additive(
    parents: Sequence[AdapterTensors],
    spec: CombineSpec,
    labels: Sequence[str],
    base_model: str | None,
    revision: str | None,
    progress: Progress,
) -> Produced:
    grouped = [module_groups(p) for p in parents]
    modules = sorted({m for groups, _ in grouped for m in groups})
    rank = spec.rank or max(config_rank(p.config) for p in parents)
    tensors = carry_full_tensors([rest for _, rest in grouped], labels)
    ranks: dict[str, int] = {}
    results: list[ModuleResult] = []
    truncations: list[Truncation] = []
    has_bias = False
    progress.start(f"combining ({spec.method})", len(modules))
    try:
        for module in modules:
            terms = [
                (i, module_term(parents[i], module, groups[module]))
                for i, (groups, _) in enumerate(grouped)
                if module in groups
            ]
            _same_layout(module, terms, labels)
            weighted = [(i, spec.weights[i], t) for i, t in terms]
            low, found = _reduce(spec, module, weighted, rank)
            biases = [w * t.bias for _, w, t in weighted if t.bias is not None]
            bias = torch.stack(biases).sum(dim=0) if biases else None
            has_bias = has_bias or bias is not None
            first = terms[0][1]
            tensors.update(term_tensors(Term(module, low, first.layout, first.kernel, bias)))
            ranks[module] = low.rank
            retained = found.retained if found is not None else None
            results.append(ModuleResult(module, low.rank, retained))
            if found is not None:
                truncations.append(found)
            progress.advance(1)
    finally:
        progress.finish()
    lora_parents = [p for p in parents if p.method == "lora"]
    config = lora_config(
        lora_parents[0].config if parents[0].method == "lora" else {},
        [p.config for p in parents],
        ranks,
        base_model=base_model,
        revision=revision,
        fan_in_fan_out=bool(lora_parents and lora_parents[0].config.get("fan_in_fan_out")),
        lora_bias=has_bias,
    )
    parameters = spec.parameters(None if spec.method == "cat" else rank)
    parameters.update(energy_parameters(results, truncations))
    parameters["modules"] = len(modules)
    return Produced("lora", config, tensors, tuple(results), parameters)


def _combine_ia3(
    parents: Sequence[AdapterTensors],
    spec: CombineSpec,
    labels: Sequence[str],
    base_model: str | None,
    revision: str | None,
) -> Produced:
    grouped = [group_by_module(p.tensors, IA3_SUFFIXES) for p in parents]
    modules = sorted({m for groups, _ in grouped for m in groups})
    tensors = carry_full_tensors([rest for _, rest in grouped], labels)
    feedforward: list[str] = []
    results = []
    for module in modules:
        holders = [i for i, (groups, _) in enumerate(grouped) if module in groups]
        kinds = {is_feedforward(parents[i].config, module) for i in holders}
        shapes = {tuple(grouped[i][0][module]["ia3_l"].shape) for i in holders}
        if len(kinds) > 1 or len(shapes) > 1:
            raise IncompatibleAdaptersError(
                f"{module}: the IA3 adapters disagree on whether it is a feed-forward module "
                "(scaling inputs) or not (scaling outputs)"
            )
        first = grouped[holders[0]][0][module]["ia3_l"]
        total = sum(
            (spec.weights[i] * grouped[i][0][module]["ia3_l"].to(torch.float32) for i in holders),
            torch.zeros(first.shape, dtype=torch.float32),
        )
        tensors[f"{PEFT_PREFIX}{module}.ia3_l"] = total.to(first.dtype)
        if kinds == {True}:
            feedforward.append(module)
        results.append(ModuleResult(module, 0))
    config = ia3_config(
        [p.config for p in parents], modules, feedforward, base_model=base_model, revision=revision
    )
    parameters = spec.parameters(None)
    parameters["modules"] = len(modules)
    return Produced("ia3", config, tensors, tuple(results), parameters)
