"""A LoRA adapter applied at forward time, leaving every base weight untouched.

For hot-swap-heavy serving: a swap then costs no pass over the base weights, and every
forward pays the low-rank branch instead, as PEFT's own LoRA layers do. Each adapted
``nn.Linear`` (or transformers ``Conv1D``) gets a forward hook computing what
``peft.tuners.lora.Linear.forward`` computes for vanilla LoRA::

    result = base(x); result = result + lora_B(lora_A(dropout(x))) * scaling

with ``x`` cast to the factors' dtype and the sum cast back to the base output's dtype.
The factors are held in the dtype PEFT gives them on this model: the base weight's, or
float32 for a float16/bfloat16 base (``autocast_adapter_dtype``). Dropout runs when the
hooked module is in training mode, as ``nn.Dropout`` would. A cast or move of the model
after the load (``model.half()``, ``.to(device)``) casts or moves PEFT's factors with it;
the hooks follow: when a module's weight is no longer in the dtype or on the device its
factors were prepared for, they use the factors converted as the module's call would
have converted PEFT's. Gradients flow to the input as through PEFT's layers; the factors
do not require grad (this is for serving, not training).

A module object reachable under two names is refused: a hook would add the branch under
both, where PEFT wraps only the name it adapted. Models sharing a module share its hooks,
as they would share merged weights. A swap while another thread runs a forward is not
supported: that forward may mix two adapters' factors across its layers.

What a hook cannot reproduce is refused with the reason (``UnmergedPlan.problem``): other
methods, LoRA variants (DoRA, aLoRA, ...), embeddings and convolutions, trainable tokens,
``modules_to_save``, trained base biases, ``target_parameters``, layer replication.

The hooks are kept on the model after ``unload()`` removes them, with the prepared factors
of the last few versions, so a swap re-registers them and switches factors.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, cast

import torch

from registry.ops.lora import module_scaling
from registry.ops.tensors import load_adapter_tensors, split_key
from registry.runtime.recent import kept_recent

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

    from registry.store.results import AdapterVersion
    from registry.store.store import Store

_SUFFIXES = ("lora_A.weight", "lora_B.weight", "lora_B.bias")
# Config fields that turn on behaviour a plain low-rank branch does not have.
_VARIANTS = {
    "use_dora": "DoRA rescales the merged weight by its norm",
    "alora_invocation_tokens": "aLoRA activates on invocation tokens",
    "use_qalora": "QALoRA pools the input by groups",
    "velora_config": "VeLoRA changes the branch",
    "monteclora_config": "MonteCLoRA samples the factors",
    "use_bdlora": "BD-LoRA uses block-diagonal factors",
    "arrow_config": "Arrow routes between adapters",
    "kasa_config": "KaSA changes the branch",
    "layer_replication": "layer replication duplicates base layers",
    "megatron_config": "Megatron layers are not torch Linear layers",
    "target_parameters": "LoRA on parameters wraps them, not a module's output",
    "trainable_token_indices": "trainable tokens replace embedding rows",
    "modules_to_save": "modules_to_save replaces whole modules",
}
# Tensors that name what they are for, where the config may not say.
_KEYS = {
    "lora_embedding_": "LoRA on an embedding layer looks rows up, it adds no Linear branch",
    "lora_magnitude_vector": "DoRA rescales the merged weight by its norm",
    "trainable_tokens_": "trainable tokens replace embedding rows",
    "modules_to_save": "modules_to_save replaces whole modules",
}
_KEPT = "_adapter_registry_branches"
_KEPT_VERSIONS = 4


@dataclass(frozen=True)
class Branch:
    """One module's prepared factors (in the dtype and on the device PEFT would use)."""

    a: torch.Tensor  # [r, in]
    b: torch.Tensor  # [out, r]
    bias: torch.Tensor | None
    scaling: float
    dropout: float
    weight_dtype: torch.dtype  # the module weight's, when the factors were prepared
    device: torch.device


@dataclass(frozen=True)
class UnmergedPlan:
    branches: dict[str, Branch]  # module path -> branch
    problem: str | None = None


class _Hook:
    """The forward hook of one module; ``branch`` is switched on a swap."""

    def __init__(self) -> None:
        self.branch: Branch | None = None
        # (branch, its factors as cast or moved since): casts apply one after another, as
        # they do to PEFT's factors (a round trip through float16 keeps the rounding)
        self.converted: tuple[Branch, Branch] | None = None

    def __call__(
        self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
    ) -> Any:
        branch = self.branch
        if branch is None:
            return result
        converted = self.converted
        if converted is not None and converted[0] is branch:
            branch = converted[1]
        weight = cast(torch.Tensor, module.weight)
        if weight.dtype != branch.weight_dtype or weight.device != branch.device:
            branch = self._follow(branch, weight)
        x = args[0] if args else next(iter(kwargs.values()))
        result_dtype = result.dtype
        if x.dtype != branch.a.dtype:
            x = x.to(dtype=branch.a.dtype)
        if branch.dropout > 0:
            x = torch.nn.functional.dropout(x, branch.dropout, module.training)
        low = torch.nn.functional.linear(x, branch.a)
        result = result + torch.nn.functional.linear(low, branch.b, branch.bias) * branch.scaling
        return result.to(result_dtype)

    def _follow(self, branch: Branch, weight: torch.Tensor) -> Branch:
        """The factors as PEFT's would be after the cast or move that changed ``weight``:
        a module's ``.to(dtype)`` casts every floating tensor under it, factors included."""
        original = self.branch
        dtype = weight.dtype if weight.dtype != branch.weight_dtype else branch.a.dtype

        def convert(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.to(dtype=dtype, device=weight.device)

        converted = replace(
            branch,
            a=convert(branch.a),
            b=convert(branch.b),
            bias=None if branch.bias is None else convert(branch.bias),
            weight_dtype=weight.dtype,
            device=weight.device,
        )
        if original is not None:
            self.converted = (original, converted)
        return converted


def _hookable(module: torch.nn.Module) -> bool:
    if type(module) is torch.nn.Linear:
        return True
    # transformers' Conv1D (GPT-2): y = x @ W + b with W [in, out]; PEFT wraps it as Linear
    cls = type(module)
    return cls.__name__ == "Conv1D" and cls.__module__.startswith("transformers.")


def plan_unmerged(store: Store, version: AdapterVersion, model: torch.nn.Module) -> UnmergedPlan:
    """The branches to hook into ``model``, or why hooks cannot match PEFT."""
    config: Mapping[str, Any] = version.manifest.config
    if version.method != "lora":
        return UnmergedPlan({}, f"it is a {version.method} adapter; unmerged load covers LoRA")
    for key, why in _VARIANTS.items():
        if config.get(key):
            return UnmergedPlan({}, f"{why} ({key} is set)")
    weights = next(f for f in version.files if f.role == "weights")
    tensors = load_adapter_tensors(version.method, config, store.blobs.path(weights.sha256)).tensors
    for key in tensors:
        for marker, why in _KEYS.items():
            if marker in key:
                return UnmergedPlan({}, f"{why} ({key})")
    parts: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in tensors.items():
        split = split_key(key, _SUFFIXES)
        if split is None:
            return UnmergedPlan({}, f"it holds {key}, which is not a LoRA factor of a Linear layer")
        parts.setdefault(split[0], {})[split[1]] = tensor
    modules = dict(model.named_modules(remove_duplicate=False))
    names: dict[int, list[str]] = {}
    for name, module in modules.items():
        names.setdefault(id(module), []).append(name)
    branches: dict[str, Branch] = {}
    for path, found in sorted(parts.items()):
        module = modules.get(path)
        if module is None:
            return UnmergedPlan({}, f"the model has no module {path}")
        aliases = [name for name in names[id(module)] if name != path]
        if aliases:
            return UnmergedPlan(
                {},
                f"{path} is the same module object as {aliases[0]}; a hook would add the "
                "branch under both names, where PEFT adapts one",
            )
        if not _hookable(module):
            return UnmergedPlan(
                {}, f"{path} is a {type(module).__name__}; unmerged load covers Linear and Conv1D"
            )
        if "lora_A.weight" not in found or "lora_B.weight" not in found:
            return UnmergedPlan({}, f"{path} lacks lora_A or lora_B")
        a, b = found["lora_A.weight"], found["lora_B.weight"]
        weight = cast(torch.Tensor, module.weight)
        out_features, in_features = (
            weight.shape if type(module) is torch.nn.Linear else weight.shape[::-1]
        )
        if a.dim() != 2 or b.dim() != 2 or a.shape[1] != in_features or b.shape[0] != out_features:
            return UnmergedPlan(
                {},
                f"{path}: the adapter's factors {list(b.shape)} @ {list(a.shape)} do not fit "
                f"its {in_features} inputs and {out_features} outputs",
            )
        dtype = weight.dtype
        if dtype in (torch.float16, torch.bfloat16):
            dtype = torch.float32  # PEFT's autocast_adapter_dtype
        elif not dtype.is_floating_point:
            return UnmergedPlan({}, f"{path} has {dtype} weights")
        bias = found.get("lora_B.bias")
        branches[path] = Branch(
            a=a.to(dtype=dtype, device=weight.device),
            b=b.to(dtype=dtype, device=weight.device),
            bias=None if bias is None else bias.to(dtype=dtype, device=weight.device),
            scaling=module_scaling(config, path, int(a.shape[0])),
            dropout=float(config.get("lora_dropout") or 0.0),
            weight_dtype=weight.dtype,
            device=weight.device,
        )
    return UnmergedPlan(branches)


def prepared_plan(store: Store, version: AdapterVersion, model: torch.nn.Module) -> UnmergedPlan:
    """``plan_unmerged``, kept on the model for the last few versions (by digest, and the
    modules' types, weight shapes, dtypes and devices)."""
    kept = _kept(model)
    plans: dict[Hashable, UnmergedPlan] = kept.setdefault("plans", {})
    key = (version.digest, _layout(model))
    return kept_recent(plans, key, lambda: plan_unmerged(store, version, model), _KEPT_VERSIONS)


def attach(plan: UnmergedPlan, model: torch.nn.Module) -> list[RemovableHandle]:
    """Register the plan's hooks (the model's kept ones, switched to this plan's factors)."""
    hooks: dict[str, _Hook] = _kept(model).setdefault("hooks", {})
    modules = dict(model.named_modules())
    handles: list[RemovableHandle] = []
    try:
        for path, branch in plan.branches.items():
            hook = hooks.setdefault(path, _Hook())
            hook.branch = branch
            handles.append(modules[path].register_forward_hook(hook, with_kwargs=True))
    except BaseException:
        detach(handles, model)
        raise
    return handles


def detach(handles: list[RemovableHandle], model: torch.nn.Module) -> None:
    """Remove the hooks; the kept hook objects drop their factors."""
    for handle in handles:
        handle.remove()
    handles.clear()
    for hook in _kept(model).get("hooks", {}).values():
        hook.branch = None
        hook.converted = None


def forget(model: torch.nn.Module) -> None:
    """Drop the hooks and factors kept on ``model``."""
    if hasattr(model, _KEPT):
        delattr(model, _KEPT)


def _kept(model: torch.nn.Module) -> dict[str, Any]:
    found: dict[str, Any] | None = getattr(model, _KEPT, None)
    if found is None:
        found = {}
        object.__setattr__(model, _KEPT, found)
    return found


def _layout(model: torch.nn.Module) -> tuple[Any, ...]:
    modules = tuple((name, type(m)) for name, m in model.named_modules())
    return modules + tuple(
        (name, tuple(t.shape), t.dtype, t.device)
        for name, t in model.named_parameters(remove_duplicate=False)
    )
