"""Resizing an adapter to rank r: the best rank-r approximation of each module's delta.

Exact SVD truncation from the factors (``lowrank.truncate``), so a LoRA of rank 64 resizes
in milliseconds per module. LoHa and LoKr deltas become LoRA factors of rank r. A DoRA
adapter stays DoRA: its magnitude vector is kept and only the direction's low-rank update
is truncated (the magnitude is re-applied to W + the truncated delta when it is folded).
"""

from __future__ import annotations

from registry.ops.lowrank import Truncation, truncate
from registry.ops.methods import check_rank
from registry.ops.peft_config import lora_config
from registry.ops.produced import ModuleResult, Produced, energy_parameters
from registry.ops.tensors import AdapterTensors
from registry.ops.terms import Term, module_groups, module_term, term_tensors
from registry.ops.threads import with_operator_threads
from registry.progress import NoProgress, Progress


@with_operator_threads
def resize(
    adapter: AdapterTensors,
    rank: int,
    *,
    base_model: str | None = None,
    revision: str | None = None,
    progress: Progress | None = None,
) -> Produced:
    check_rank(rank, "resize")
    progress = progress or NoProgress()
    groups, rest = module_groups(adapter)
    tensors = dict(rest)
    ranks: dict[str, int] = {}
    results: list[ModuleResult] = []
    truncations: list[Truncation] = []
    has_bias = False
    progress.start("resizing", len(groups))
    try:
        for module, parts in sorted(groups.items()):
            term = module_term(adapter, module, parts)
            found = truncate(term.low, rank)
            has_bias = has_bias or term.bias is not None
            tensors.update(
                term_tensors(
                    Term(module, found.low, term.layout, term.kernel, term.bias, term.magnitude)
                )
            )
            ranks[module] = found.low.rank
            results.append(ModuleResult(module, found.low.rank, found.retained))
            truncations.append(found)
            progress.advance(1)
    finally:
        progress.finish()
    lora = adapter.method == "lora"
    config = lora_config(
        adapter.config if lora else {},
        [adapter.config],
        ranks,
        base_model=base_model,
        revision=revision,
        fan_in_fan_out=bool(lora and adapter.config.get("fan_in_fan_out")),
        lora_bias=has_bias,
        use_dora=bool(lora and adapter.config.get("use_dora")),
    )
    parameters = {"rank": rank, "modules": len(groups), "source_method": adapter.method}
    parameters.update(energy_parameters(results, truncations))
    return Produced("lora", config, tensors, tuple(results), parameters)
