"""Applying a stored adapter to a live torch model, after checking that it fits.

Native mode merges the adapter's deltas into the model's weights in place (no
inference overhead) and keeps the original tensors, so ``unload()`` puts back
the exact original weights and adapters can be hot-swapped. ``mode="peft"``
hands the same checked files to ``peft.PeftModel.from_pretrained``.
"""

from __future__ import annotations

import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import torch

from registry.bases.compat import NATIVE_METHODS, CompatReport, failure_message
from registry.bases.target import target_from_module
from registry.errors import (
    BaseModelMismatchError,
    IntegrityError,
    RegistryError,
    UnsupportedMethodError,
)
from registry.ops.fold import weight_updates
from registry.ops.tensors import load_adapter_tensors
from registry.ops.updates import WeightUpdate, apply_update
from registry.store.base_records import compat_for_target
from registry.store.export import export_version
from registry.store.results import AdapterVersion
from registry.store.verify import check_manifest

if TYPE_CHECKING:
    from registry.store.store import Store

LoadMode = Literal["auto", "native", "peft"]
_MARKER = "_adapter_registry_loaded"


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
    active: bool = True

    def unload(self) -> torch.nn.Module:
        """Restore the base model's original weights and return it."""
        if not self.active:
            return self.base
        if self.mode == "native":
            params = _tensors_by_name(self.base)
            with torch.no_grad():
                for name, original in self._originals.items():
                    params[name].data = original
            self._originals.clear()
        else:
            restored = self.model.unload() if hasattr(self.model, "unload") else None
            if restored is None:
                restored = self.model.get_base_model()
            self.base = restored
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


def _check_blobs(version: AdapterVersion, store: Store) -> None:
    check_manifest(version)
    for entry in version.files:
        problem = store.blobs.check_local(entry.sha256, entry.size)
        if problem is not None:
            raise IntegrityError(
                f"{version.ref}: {entry.path}: {problem}; run `adapters verify {version.ref}`"
            )


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
) -> LoadedAdapter:
    if mode not in ("auto", "native", "peft"):
        raise RegistryError(f"unknown load mode {mode!r}; use 'auto', 'native' or 'peft'")
    chosen: Literal["native", "peft"] = (
        "native"
        if mode == "auto" and version.method in NATIVE_METHODS
        else "peft"
        if mode == "auto"
        else mode
    )
    if chosen == "native" and version.method not in NATIVE_METHODS:
        raise UnsupportedMethodError(
            f"{version.method} adapters cannot be applied natively; use mode='peft'"
        )
    loaded_marker = getattr(model, _MARKER, None)
    if loaded_marker is not None:
        raise RegistryError(
            "this model already has an adapter loaded; unload() it first (adapters are "
            "swapped by unloading one and loading the next)"
        )
    _check_blobs(version, store)
    _check_signature_policy(version, store)
    report = compat_for_target(store, version, target_from_module(model))
    if not report.ok:
        hints = ["pass strict=False to load anyway"]
        if any(c.name == "weights" for c in report.failures):
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
    if chosen == "peft":
        peft_model = _load_with_peft(store, version, model)
        setattr(model, _MARKER, version.digest)
        return LoadedAdapter(
            version.ref, version.digest, version.method, "peft", report, peft_model, model
        )
    originals = _apply_native(store, version, model)
    setattr(model, _MARKER, version.digest)
    return LoadedAdapter(
        version.ref, version.digest, version.method, "native", report, model, model, originals
    )


def _apply_native(
    store: Store, version: AdapterVersion, model: torch.nn.Module
) -> dict[str, torch.Tensor]:
    weights = next(f for f in version.files if f.role == "weights")
    adapter = load_adapter_tensors(
        version.method, version.manifest.config, store.blobs.path(weights.sha256)
    )
    params = _tensors_by_name(model)
    updates = weight_updates(adapter, {name: t.shape for name, t in params.items()})
    # Compute every new value before touching the model, so a failure leaves it unchanged.
    new_values: dict[str, torch.Tensor] = {}
    for update in updates:
        if update.target not in params:
            if update.optional:
                continue
            raise BaseModelMismatchError(f"the model has no parameter {update.target}", None)
        current = new_values.get(update.target, params[update.target].data)
        new_values[update.target] = _checked(apply_update(current, update), update, current)
    originals: dict[str, torch.Tensor] = {}
    with torch.no_grad():
        for name, value in new_values.items():
            originals[name] = params[name].data
            params[name].data = value.to(device=params[name].device)
    return originals


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
