"""The names and layout a transformers model's tensors have in its checkpoint, where they
differ from the live module's.

transformers 5 renames some modules when it loads a checkpoint (ViT's
``encoder.layer.N.attention.attention.query`` becomes ``layers.N.attention.q_proj``) and fuses
others (Mixtral's per-expert ``experts.E.w1`` / ``w3`` become one ``experts.gate_up_proj``), and
reverses both when it saves. The registry compares names in the checkpoint's form, the form on
disk: a live module is fingerprinted as ``save_pretrained`` would write it, an adapter that names
live modules binds to their saved names, and an update aimed at a saved tensor that is a slice of
a fused live parameter is applied to that slice. All of it runs transformers' own conversion
tables and operations (``conversion_mapping``, ``core_model_loading``), as peft does when it
loads an adapter, so the two cannot drift apart.

transformers (and torch) are imported inside the functions.
"""

from __future__ import annotations

import copy
import json
import weakref
from collections.abc import Callable, Container, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


class CheckpointLayout:
    """transformers' conversions between one model's live tensors and its checkpoint."""

    def __init__(self, model: Any, conversions: list[Any]) -> None:
        from transformers.core_model_loading import WeightConverter, WeightRenaming

        self._model = model
        # Our own copies: matching marks a transform as used, which the model's own
        # (``_weight_conversions``, kept for save_pretrained) must not see.
        conversions = copy.deepcopy(conversions)
        self._saved_names: dict[str, str | None] = {}
        self._renamings = [c for c in conversions if isinstance(c, WeightRenaming)]
        self._converters = [c for c in conversions if isinstance(c, WeightConverter)]
        reverse = [c.reverse_transform() for c in conversions[::-1]]
        self._reverse_renamings = [c for c in reverse if isinstance(c, WeightRenaming)]
        self._reverse_converters = [c for c in reverse if isinstance(c, WeightConverter)]

    def saved_name(self, live: str) -> str | None:
        """The checkpoint name of live tensor ``live``; None when it is fused from several."""
        from transformers.core_model_loading import apply_converters, apply_renamings

        if live not in self._saved_names:
            _, fused = apply_converters(live, self._reverse_converters)
            saved = None if fused is not None else apply_renamings(live, self._reverse_renamings)
            self._saved_names[live] = None if saved is None else str(saved)
        return self._saved_names[live]

    def saved_adapter_key(self, key: str, stored: Container[str]) -> str:
        """Adapter key ``base_model.model.<module>.<tensor>`` with a live module path that
        ``stored`` (checkpoint names) lacks, renamed to the module's saved path."""
        prefix = "base_model.model."
        if not key.startswith(prefix):
            return key
        parts = key[len(prefix) :].split(".")
        for end in range(len(parts), 0, -1):
            module, rest = ".".join(parts[:end]), parts[end:]
            # A module by its weight (adapter factors), or a full tensor (modules_to_save).
            probe = f"{module}.weight" if rest else module
            if probe in stored:
                return key
            saved = self.saved_name(probe)
            if saved is not None and saved != probe and saved in stored:
                renamed = saved.removesuffix(".weight") if rest else saved
                return prefix + ".".join([renamed, *rest])
        return key

    def live_name(self, saved: str) -> str:
        """The live tensor that checkpoint tensor ``saved`` is loaded into (maybe fused)."""
        from transformers.core_model_loading import rename_source_key

        name, _ = rename_source_key(saved, self._renamings, self._converters)
        return str(name)

    def saved_tensors(self, live: str, tensor: torch.Tensor) -> dict[str, torch.Tensor]:
        """Live tensor ``live`` as the checkpoint tensors ``save_pretrained`` writes for it."""
        from transformers.core_model_loading import revert_weight_conversion

        renamed = self.saved_name(live)
        if renamed is not None:
            return {renamed: tensor}
        with _PiecesAsViews():
            return dict(revert_weight_conversion(self._model, {live: tensor}))

    def live_tensors(self, saved: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Checkpoint tensors as the live tensors ``from_pretrained`` makes of them."""
        from transformers.core_model_loading import dot_natural_key, rename_source_key

        renamings = copy.deepcopy(self._renamings)
        converters = copy.deepcopy(self._converters)
        by_pattern = {p: c for c in converters for p in c.source_patterns}
        pending: dict[str, Any] = {}
        out: dict[str, torch.Tensor] = {}
        # Sorted as transformers sorts a checkpoint: experts 0, 1, ..., 10 stack in that order.
        for key in sorted(saved, key=dot_natural_key):
            name, pattern = rename_source_key(key, renamings, converters)
            if pattern is None:
                out[name] = saved[key]
                continue
            converter = pending.setdefault(name, copy.deepcopy(by_pattern[pattern]))
            converter.add_tensor(name, key, pattern, saved[key])
        for name, converter in pending.items():
            made = converter.convert(name, model=self._model, config=self._model.config)
            for target, value in made.items():
                out[target] = value[0] if isinstance(value, list) else value
        return out

    def updated(
        self,
        live: str,
        tensor: torch.Tensor,
        update: Callable[[str, torch.Tensor], torch.Tensor],
    ) -> torch.Tensor:
        """A new value for live tensor ``live``: its checkpoint tensors, each passed through
        ``update(saved_name, value)``, converted back into the live layout."""
        saved = {
            name: update(name, value) for name, value in self.saved_tensors(live, tensor).items()
        }
        rebuilt = self.live_tensors(saved)
        if set(rebuilt) != {live}:
            raise ValueError(f"{live}: its checkpoint tensors do not convert back to it alone")
        return rebuilt[live]


class _PiecesAsViews:
    """Leaves the pieces transformers splits a fused tensor into as views of it.

    Its split operations make every piece contiguous, a copy of the whole parameter; a
    fingerprint reads a few sampled elements of each piece and an update writes a new tensor,
    so neither needs the copy (gigabytes per layer on a large MoE).
    """

    def __enter__(self) -> None:
        import torch
        from torch.overrides import TorchFunctionMode

        class _Mode(TorchFunctionMode):
            def __torch_function__(
                self, func: Any, types: Any, args: Any = (), kwargs: Any = None
            ) -> Any:
                if func is torch.Tensor.contiguous:
                    return args[0]
                return func(*args, **(kwargs or {}))

        self._mode = _Mode()
        self._mode.__enter__()  # type: ignore[no-untyped-call]

    def __exit__(self, *exc: object) -> None:
        self._mode.__exit__(*exc)  # type: ignore[no-untyped-call]


def _conversions(model: Any) -> list[Any]:
    """The conversions transformers reverts when saving ``model`` (as ``save_pretrained``)."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import PrefixChange

    found = getattr(model, "_weight_conversions", None)
    if found is None:
        # As transformers does for a model not made by from_pretrained: no legacy renames,
        # and no prefix changes it could not know were applied.
        found = [
            c
            for c in get_model_conversion_mapping(model, add_legacy=False)
            if not isinstance(c, PrefixChange)
        ]
    return list(found)


def layout_of_model(model: Any) -> CheckpointLayout | None:
    """``model``'s checkpoint layout, or None when it is not a transformers model whose
    checkpoint names differ from its live ones."""
    import sys

    transformers = sys.modules.get("transformers")
    if transformers is None or not isinstance(model, transformers.PreTrainedModel):
        return None
    if model in _LAYOUTS:  # every load fingerprints the model: look its tables up once
        return _LAYOUTS[model]
    try:
        conversions = _conversions(model)
    except (ImportError, AttributeError):  # transformers 4 has no conversion tables
        conversions = []
    layout = CheckpointLayout(model, conversions) if conversions else None
    _LAYOUTS[model] = layout
    return layout


_LAYOUTS: weakref.WeakKeyDictionary[Any, CheckpointLayout | None] = weakref.WeakKeyDictionary()


def layout_of_config(config: Mapping[str, Any]) -> CheckpointLayout | None:
    """The checkpoint layout of the model a ``config.json`` describes (built on the meta
    device, so nothing is allocated); None when there is none or the model is unknown."""
    if not config.get("model_type"):
        return None
    return _layout_of_config(json.dumps(dict(config), sort_keys=True, default=str))


@lru_cache(maxsize=8)
def _layout_of_config(text: str) -> CheckpointLayout | None:
    try:
        import torch
        import transformers
    except ImportError:
        return None
    config = json.loads(text)
    architectures = config.get("architectures") or [None]
    # A live model's config names no architecture: its base model has the same conversions.
    cls = getattr(transformers, str(architectures[0]), None)
    try:
        model_config = transformers.AutoConfig.for_model(**config)
        with torch.device("meta"):
            if isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel):
                model = cls(model_config)
            else:
                model = transformers.AutoModel.from_config(model_config)  # type: ignore[no-untyped-call]
    except Exception:  # a config this transformers cannot build: no layout to follow
        return None
    return layout_of_model(model)
