"""Applying a stored adapter to a live torch model, after checking that it fits.

Native mode merges the adapter's deltas into the model's weights in place (no
inference overhead) and keeps the original tensors, so ``unload()`` puts back
the exact original weights and adapters can be hot-swapped. ``merge=False`` instead
hooks LoRA's low-rank branch in at forward time (``unmerged``), leaving the weights
alone. ``mode="peft"`` hands the same checked files to ``peft.PeftModel.from_pretrained``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import warnings
from collections.abc import Hashable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import torch

from registry.bases.compat import NATIVE_METHODS, CompatReport, failure_message, is_unverified
from registry.bases.target import target_from_module
from registry.errors import (
    ArgumentError,
    BaseModelMismatchError,
    IntegrityError,
    RegistryError,
    UnsupportedMethodError,
)
from registry.formats.lora_init import base_rewriting_init, base_rewriting_message
from registry.ops.threads import torch_threads
from registry.ops.updates import LowRankProduct, WeightUpdate, apply_update, apply_update_into
from registry.runtime.live_target import forget_target, live_target
from registry.runtime.module_snapshot import ModuleSnapshot, restore_snapshot, take_snapshot
from registry.runtime.native_plan import NativePlan, canonical_names, plan_native
from registry.runtime.recent import kept_recent
from registry.runtime.saved_updates import apply_saved_updates, route_saved_updates
from registry.runtime.unmerged import attach, detach, prepared_plan
from registry.runtime.unmerged import forget as forget_branches
from registry.store.base_records import KnownBase, adapter_shapes, compat_for_target
from registry.store.export import export_version
from registry.store.results import AdapterVersion
from registry.store.verify import check_manifest

if TYPE_CHECKING:
    from torch.utils.hooks import RemovableHandle

    from registry.store.store import Store

LoadMode = Literal["auto", "native", "peft"]
_MARKER = "_adapter_registry_loaded"
# Merged tensors of the last unloaded adapter, by parameter name, and float32 scratch
# tensors by shape: the next load writes into them instead of allocating (see unload()).
_BUFFERS = "_adapter_registry_buffers"
_SCRATCH = "_adapter_registry_scratch"
# The native plans of recently loaded versions, by (digest, parameter shapes, tied names):
# a swap back to one of them skips reading and preparing its tensors again.
_UPDATES = "_adapter_registry_updates"
_UPDATES_KEPT = 4
# Blobs hashed intact by this process: (path, sha256, size, mtime_ns, inode). A rewritten
# or replaced file changes the stat, and is hashed again.
_verified_blobs: set[tuple[str, str, int, int, int]] = set()
# The tensor shapes in a version's weights file, by digest (which names the content).
_shapes: dict[str, dict[str, tuple[int, ...]]] = {}
_SHAPES_KEPT = 64


class AdapterCompatibilityWarning(UserWarning):
    """An adapter was loaded although a compatibility check failed or warned."""


@dataclass
class LoadedAdapter:
    """A loaded adapter. ``model`` is what to run: the same module (native) or a PeftModel.

    Use as a context manager, or call ``unload()``, to restore the base exactly.
    """

    ref: str
    digest: str
    method: str
    mode: Literal["native", "peft"]
    report: CompatReport
    model: Any
    base: torch.nn.Module
    _originals: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    _snapshot: ModuleSnapshot | None = field(default=None, repr=False)  # peft mode
    active: bool = True
    merged: bool = True  # native: merged into the weights, or hooked in at forward time
    _hooks: list[RemovableHandle] = field(default_factory=list, repr=False)

    def unload(self, *, keep_buffers: bool = True) -> torch.nn.Module:
        """Restore the base model's original weights (the very tensors) and return it.

        Native mode keeps the merged tensors on the model for the next ``load`` to write
        into (a swap then allocates nothing): the same memory the loaded adapter used.
        ``keep_buffers=False`` frees them; so does ``release_buffers(model)``.
        """
        if not self.active:
            return self.base
        if self.mode == "native" and not self.merged:
            detach(self._hooks, self.base)
            if not keep_buffers:
                release_buffers(self.base)
        elif self.mode == "native":
            params = _tensors_by_name(self.base)
            merged: dict[str, torch.Tensor] = {}
            with torch.no_grad():
                for name, original in self._originals.items():
                    merged[name] = params[name].data
                    params[name].data = original
            self._originals.clear()
            if keep_buffers:
                _buffers(self.base).update(merged)
            else:
                release_buffers(self.base)
        elif self._snapshot is not None:
            # PEFT's own unload leaves modules_to_save wrappers and rewritten weights behind.
            self.base = restore_snapshot(self._snapshot)
            self._snapshot = None
        if getattr(self.base, _MARKER, None) == self.digest:
            delattr(self.base, _MARKER)
        self.active = False
        return self.base

    def __enter__(self) -> LoadedAdapter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.unload()


def _tensors_by_name(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    found: dict[str, torch.Tensor] = dict(model.named_buffers())
    found.update(dict(model.named_parameters()))
    return found


def release_buffers(model: torch.nn.Module) -> None:
    """Free the tensors kept on ``model`` for fast swaps (see ``LoadedAdapter.unload``)."""
    for attribute in (_BUFFERS, _SCRATCH, _UPDATES):
        if hasattr(model, attribute):
            delattr(model, attribute)
    forget_target(model)
    forget_branches(model)


def _buffers(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    found: dict[str, torch.Tensor] | None = getattr(model, _BUFFERS, None)
    if found is None:
        found = {}
        object.__setattr__(model, _BUFFERS, found)
    return found


def _scratch(model: torch.nn.Module, like: torch.Tensor) -> torch.Tensor | None:
    if like.dtype == torch.float32:
        return None
    pool: dict[tuple[Any, ...], torch.Tensor] | None = getattr(model, _SCRATCH, None)
    if pool is None:
        pool = {}
        object.__setattr__(model, _SCRATCH, pool)
    key = (tuple(like.shape), str(like.device))
    if key not in pool:
        pool[key] = torch.empty(like.shape, dtype=torch.float32, device=like.device)
    return pool[key]


def _check_blobs(version: AdapterVersion, store: Store, *, reverify: bool) -> None:
    check_manifest(version)
    for entry in version.files:
        try:
            path = store.blobs.path(entry.sha256)
            stat = path.stat()
            key = (str(path), entry.sha256, stat.st_size, stat.st_mtime_ns, stat.st_ino)
        except OSError:
            key = None
        if key is not None and key in _verified_blobs and not reverify:
            continue
        problem = store.blobs.check_local(entry.sha256, entry.size)
        if problem is not None:
            raise IntegrityError(
                f"{version.ref}: {entry.path}: {problem}; run `adapters verify {version.ref}`"
            )
        if key is not None:
            _verified_blobs.add(key)


def _check_signature_policy(version: AdapterVersion, store: Store) -> None:
    # Policy, not compatibility: strict=False does not lift it.
    from registry.lifecycle.policy import load_policy
    from registry.security.signing import require_trusted_signature

    if load_policy(store.root).load_requires_signature:
        require_trusted_signature(
            store,
            version,
            "to load it (policy.json: load.require_signature)",
            check_blobs=False,  # _check_blobs has just re-hashed them
        )


def load(
    store: Store,
    version: AdapterVersion,
    model: torch.nn.Module,
    *,
    strict: bool = True,
    mode: LoadMode = "auto",
    reverify: bool = False,
    allow_unverified_base: bool = False,
    exhaustive: bool = False,
    known_base: KnownBase | None = None,
    merge: bool = True,
) -> LoadedAdapter:
    """Check ``version`` against ``model`` and apply it (see the module's docstring).

    ``merge=False`` (native LoRA only) leaves the base weights untouched and adds the
    low-rank branch at forward time (``registry.runtime.unmerged``).
    """
    if mode not in ("auto", "native", "peft"):
        raise RegistryError(f"unknown load mode {mode!r}; use 'auto', 'native' or 'peft'")
    if not merge and mode == "peft":
        raise ArgumentError(
            "merge=False is the native unmerged mode; mode='peft' is unmerged already: "
            "drop merge=False, or use mode='auto'"
        )
    if not merge and version.method != "lora":
        raise UnsupportedMethodError(
            f"{version.ref} cannot be loaded with merge=False: it is a {version.method} "
            "adapter, and unmerged load covers LoRA; load it with merge=True or mode='peft'"
        )
    if not merge:
        mode = "native"
    rewrites_base = base_rewriting_init(version.method, version.manifest.config)
    chosen: Literal["native", "peft"] = (
        "native"
        if mode == "auto" and version.method in NATIVE_METHODS and rewrites_base is None
        else "peft"
        if mode == "auto"
        else mode
    )
    if chosen == "native" and rewrites_base is not None:
        raise UnsupportedMethodError(base_rewriting_message(version.ref, rewrites_base))
    if chosen == "native" and version.method not in NATIVE_METHODS:
        analysed = version.manifest.analysis
        why = (
            f"the registry stores {version.method} adapters ({analysed} analysis) but does not "
            "model their maths"
            if analysed != "full"
            else f"native load covers {', '.join(NATIVE_METHODS)}"
        )
        raise UnsupportedMethodError(
            f"{version.ref} cannot be applied natively: {why}; load it with mode='peft'"
        )
    _refuse_peft_wrapped(model)
    loaded_marker = getattr(model, _MARKER, None)
    if loaded_marker is not None:
        raise RegistryError(
            "this model already has an adapter loaded; unload() it first (adapters are "
            "swapped by unloading one and loading the next)"
        )
    _check_blobs(version, store, reverify=reverify)
    _check_signature_policy(version, store)
    target = (
        target_from_module(model, digest=_bound_parameters(store, version))
        if exhaustive
        else live_target(model, refresh=reverify)
    )
    report = compat_for_target(
        store,
        version,
        target,
        allow_unverified_base=allow_unverified_base,
        known=known_base,  # read again on every load: base records may change in between
        shapes=_adapter_shapes(store, version),
    )
    if not report.ok:
        hints = ["pass strict=False to load anyway"]
        if any(is_unverified(c) for c in report.failures):
            hints = []  # the check's own sentence says how to record the base or opt in
        elif any(c.name == "weights" for c in report.failures):
            hints.append(
                "if these weights are equivalent to the ones trained on, record that with "
                "`adapters base add` and `adapters base link A B --relation equivalent`"
            )
        message = failure_message(report, hints)
        if strict:
            raise BaseModelMismatchError(message, report)
        warnings.warn(message, AdapterCompatibilityWarning, stacklevel=3)
    elif report.warnings:
        notes = "; ".join(f"{c.name}: {c.detail}" for c in report.warnings)
        warnings.warn(f"loading {version.ref}: {notes}", AdapterCompatibilityWarning, stacklevel=3)
    if not merge:
        unmerged = prepared_plan(store, version, model)
        if unmerged.problem is not None:
            raise UnsupportedMethodError(
                f"{version.ref} cannot be loaded with merge=False: {unmerged.problem}; "
                "load it with merge=True or mode='peft'"
            )
        hooks = attach(unmerged, model)
        setattr(model, _MARKER, version.digest)
        return LoadedAdapter(
            version.ref, version.digest, version.method, "native", report, model, model,
            merged=False, _hooks=hooks,
        )  # fmt: skip
    plan = _plan_for(store, version, model) if chosen == "native" else None
    if plan is not None and plan.problem is not None:
        if mode == "native":
            raise UnsupportedMethodError(
                f"{version.ref} cannot be applied natively: {plan.problem}; load it with "
                "mode='peft'"
            )
        chosen = "peft"  # auto: PEFT gives what a fold cannot
    if chosen == "peft":
        snapshot = take_snapshot(model, copy_values=rewrites_base is not None)
        try:
            peft_model = _load_with_peft(store, version, model)
        except BaseException:
            restore_snapshot(snapshot)
            raise
        setattr(model, _MARKER, version.digest)
        return LoadedAdapter(
            version.ref,
            version.digest,
            version.method,
            "peft",
            report,
            peft_model,
            model,
            _snapshot=snapshot,
        )
    assert plan is not None
    originals = _apply_native(plan.updates, model)
    setattr(model, _MARKER, version.digest)
    return LoadedAdapter(
        version.ref, version.digest, version.method, "native", report, model, model, originals
    )


def _refuse_peft_wrapped(model: torch.nn.Module) -> None:
    """Refuse a model PEFT has already changed, saying how to get the plain base back.

    Its parameters are renamed (``...q_proj.base_layer.weight``) and its own adapters run
    on top of anything merged into them, so neither loading mode would give what PEFT gives
    on the base alone; unwrapping it here would drop the caller's adapters.
    """
    peft = sys.modules.get("peft")
    if peft is None:  # not imported: nothing can be wrapped by it
        return
    from peft.tuners.tuners_utils import BaseTunerLayer

    layers = [m for m in model.modules() if isinstance(m, BaseTunerLayer)]
    if not isinstance(model, peft.PeftModel) and not layers:
        return
    what = "a peft.PeftModel" if isinstance(model, peft.PeftModel) else "a model with PEFT layers"
    if any(layer.merged for layer in layers):
        raise ArgumentError(
            f"this is {what} with an adapter merged into its weights; call "
            "`model.unmerge_adapter()`, then `base = model.unload()`, and load onto `base`"
        )
    raise ArgumentError(
        f"this is {what}; pass the base model instead: `base = model.unload()` (removes "
        "PEFT's layers, the base weights are untouched), then load onto `base` "
        "(mode='peft' wraps it in a new PeftModel)"
    )


def _adapter_shapes(store: Store, version: AdapterVersion) -> dict[str, tuple[int, ...]]:
    found = _shapes.get(version.digest)
    if found is None:
        found = adapter_shapes(store, version)
        if len(_shapes) >= _SHAPES_KEPT:
            del _shapes[next(iter(_shapes))]
        _shapes[version.digest] = found
    return found


def _bound_parameters(store: Store, version: AdapterVersion) -> set[str] | bool:
    """The base parameters the adapter binds to, hashed in full by an exhaustive load
    (every tensor for methods that bind to no module)."""
    from registry.bases.binding import MODULE_METHODS, requirements

    if version.method not in MODULE_METHODS:
        return True
    shapes = adapter_shapes(store, version)
    return {r.parameter for r in requirements(version.method, version.manifest.config, shapes)}


def _apply_native(updates: list[WeightUpdate], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    params = _tensors_by_name(model)
    updates, fused = route_saved_updates(model, params, updates)
    # Compute every new value before touching the model, so a failure leaves it unchanged.
    # New values go into the buffers the last unload left (never the model's own tensors).
    spare = _buffers(model)
    with torch_threads():  # the merge's matmuls, on as many cores as are idle
        new_values = _merged_values(model, params, updates, spare)
        for name, aimed in fused.items():  # checkpoint tensors the live model fuses
            current = new_values.get(name, params[name].data)
            new_values[name] = apply_saved_updates(model, name, current, aimed)
    originals: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, value in new_values.items():
            originals[name] = params[name].data
            params[name].data = value.to(device=params[name].device)
    return originals


def _merged_values(
    model: torch.nn.Module,
    params: dict[str, torch.Tensor],
    updates: list[WeightUpdate],
    spare: dict[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    new_values: dict[str, torch.Tensor] = {}
    for update in updates:
        if update.target not in params:
            if update.optional:
                continue
            raise BaseModelMismatchError(f"the model has no parameter {update.target}", None)
        current = new_values.get(update.target, params[update.target].data)
        if update.kind == "add" and isinstance(update.value, LowRankProduct):
            out = new_values.get(update.target)
            if out is None:
                out = _spare_for(spare, update.target, current)
            if apply_update_into(current, update, out, _scratch(model, current)):
                new_values[update.target] = out
                continue
        new_values[update.target] = _checked(apply_update(current, update), update, current)
    return new_values


def _plan_for(store: Store, version: AdapterVersion, model: torch.nn.Module) -> NativePlan:
    """The version's native plan for this model, prepared once per (version, shapes, ties).

    The digest names the content (its blobs were checked just before), so a kept entry is
    exact; its tensors are only read, never written, by the merge.
    """
    shapes = {name: t.shape for name, t in _tensors_by_name(model).items()}
    key = (version.digest, tuple(shapes.items()), tuple(canonical_names(model).items()))
    kept: dict[Hashable, NativePlan] | None = getattr(model, _UPDATES, None)
    if kept is None:
        kept = {}
        object.__setattr__(model, _UPDATES, kept)
    return kept_recent(kept, key, lambda: plan_native(store, version, model), _UPDATES_KEPT)


def _spare_for(spare: dict[str, torch.Tensor], name: str, like: torch.Tensor) -> torch.Tensor:
    """A tensor to write ``name``'s new value into: last swap's, or a new one."""
    found = spare.pop(name, None)
    if found is not None and (
        found.shape == like.shape and found.dtype == like.dtype and found.device == like.device
    ):
        return found
    return torch.empty_like(like)


def _checked(value: torch.Tensor, update: WeightUpdate, current: torch.Tensor) -> torch.Tensor:
    if value.shape != current.shape:
        raise BaseModelMismatchError(
            f"{update.target}: the adapter produces shape {list(value.shape)}, "
            f"the model has {list(current.shape)}",
            None,
        )
    return value


def _load_with_peft(store: Store, version: AdapterVersion, model: torch.nn.Module) -> Any:
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise RegistryError(
            f"loading {version.method} adapters needs the peft library: "
            "pip install 'adapter-registry[peft]'"
        ) from exc
    staging = Path(tempfile.mkdtemp(prefix="load-", dir=store.tmp_dir))
    try:
        exported = export_version(version, store.blobs, staging / "adapter")
        return PeftModel.from_pretrained(model, str(exported.directory), is_trainable=False)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
