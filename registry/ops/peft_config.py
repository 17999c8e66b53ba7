"""adapter_config.json for adapters the operators produce.

A produced LoRA has scaling 1 everywhere (``lora_alpha = r``, and ``alpha_pattern`` equal to
``rank_pattern`` where a module's rank differs), as PEFT's ``add_weighted_adapter`` does: the
parents' scalings are already inside the factors. Ranks that differ from the most common one
go into ``rank_pattern`` under the module's full name, which PEFT matches exactly.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Keys that restrict which layers a config's target_modules select; when a parent uses any,
# short module names would select more than the adapter holds.
_LAYER_FILTERS = ("layers_to_transform", "layers_pattern", "exclude_modules")
# Set by the operators, or meaningless for a produced adapter (training-time initialisation).
_RESET: dict[str, Any] = {
    "use_rslora": False,
    "alpha_pattern": {},
    "rank_pattern": {},
    "layers_to_transform": None,
    "layers_pattern": None,
    "exclude_modules": None,
    "init_lora_weights": True,
    "inference_mode": True,
}


def target_modules(configs: Sequence[Mapping[str, Any]], modules: Iterable[str]) -> list[str]:
    """What to write as ``target_modules`` so that PEFT selects exactly ``modules``.

    The union of the parents' lists when every parent selects by plain names; the full module
    names otherwise (a regex, or a layer filter, does not survive a union).
    """
    names: set[str] = set()
    for config in configs:
        value = config.get("target_modules")
        filtered = any(config.get(k) not in (None, []) for k in _LAYER_FILTERS)
        if not isinstance(value, list) or filtered:
            return sorted(set(modules))
        names.update(str(v) for v in value)
    return sorted(names)


def _ranks(ranks: Mapping[str, int]) -> tuple[int, dict[str, int]]:
    counts = Counter(ranks.values())
    common = max(counts, key=lambda r: (counts[r], r)) if counts else 1
    pattern = {module: rank for module, rank in sorted(ranks.items()) if rank != common}
    return common, pattern


def _union(configs: Sequence[Mapping[str, Any]], key: str) -> list[str] | None:
    found: set[str] = set()
    for config in configs:
        value = config.get(key)
        if isinstance(value, list):
            found.update(str(v) for v in value)
    return sorted(found) or None


def lora_config(
    template: Mapping[str, Any],
    parents: Sequence[Mapping[str, Any]],
    ranks: Mapping[str, int],
    *,
    base_model: str | None,
    revision: str | None,
    fan_in_fan_out: bool,
    lora_bias: bool = False,
    use_dora: bool = False,
) -> dict[str, Any]:
    """A LoRA config for ``ranks`` (module -> rank), keeping ``template``'s other settings.

    ``template`` is the first parent's config when that is LoRA (task type, dropout, bias
    mode and PEFT's other keys carry over, as PEFT's ``replace`` does), else empty.
    """
    r, pattern = _ranks(ranks)
    config = dict(template)
    config.update(_RESET)
    config.update(
        {
            "peft_type": "LORA",
            "task_type": template.get("task_type") or _first(parents, "task_type"),
            "base_model_name_or_path": base_model,
            "revision": revision,
            "r": r,
            "lora_alpha": r,
            "rank_pattern": pattern,
            "alpha_pattern": dict(pattern),
            "target_modules": target_modules(parents, ranks),
            "modules_to_save": _union(parents, "modules_to_save"),
            "fan_in_fan_out": fan_in_fan_out,
            "lora_bias": lora_bias,
            "use_dora": use_dora,
        }
    )
    config.setdefault("bias", "none")
    config.setdefault("lora_dropout", 0.0)
    return config


def ia3_config(
    parents: Sequence[Mapping[str, Any]],
    modules: Iterable[str],
    feedforward: Iterable[str],
    *,
    base_model: str | None,
    revision: str | None,
) -> dict[str, Any]:
    """An IA3 config selecting ``modules``, with ``feedforward`` among them.

    PEFT requires feed-forward modules to be a subset of the targets, so both are plain-name
    unions, or both full module names.
    """
    modules = sorted(set(modules))
    targets = target_modules(parents, modules)
    plain = targets != modules and all(
        isinstance(p.get("feedforward_modules"), list | type(None)) for p in parents
    )
    if plain:
        feedforward_names = _union(parents, "feedforward_modules") or []
    else:
        targets, feedforward_names = modules, sorted(set(feedforward))
    config = dict(parents[0])
    config.update(
        {
            "peft_type": "IA3",
            "base_model_name_or_path": base_model,
            "revision": revision,
            "target_modules": targets,
            "feedforward_modules": feedforward_names,
            "modules_to_save": _union(parents, "modules_to_save"),
            "inference_mode": True,
        }
    )
    # Only keys the parent's PEFT version knows: an unknown key makes PEFT warn or fail.
    config.update({key: None for key in _LAYER_FILTERS if key in config})
    return config


def _first(configs: Sequence[Mapping[str, Any]], key: str) -> Any:
    for config in configs:
        if config.get(key) is not None:
            return config[key]
    return None
