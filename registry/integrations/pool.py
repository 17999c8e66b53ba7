"""Several adapters resident on one base model, selected per call or per batch.

``AdapterPool`` puts versions on the model through PEFT's multi-adapter support
(``load_adapter`` with one adapter name per version), after checking each version
against the base once (the base is fingerprinted once, when the pool is made). A
call selects one adapter with ``use(ref)``; a LoRA batch mixes adapters row by row
with ``batch(refs)`` (PEFT's ``adapter_names``). Past ``max_resident`` adapters the
least recently used one is deleted from the model. One lock serialises everything
that touches the model: a ``use`` or ``batch`` block holds it while it runs, so
threads may share a pool, and their forwards run one at a time (a mixed batch is how
several requests share one forward). ``close()`` unloads PEFT's layers and gives back
the base module with every parameter and buffer as it was.

References are resolved again after ``refresh_seconds``, so a moved alias is served
from then on; the version it left stays resident until it is evicted.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from registry.bases.compat import CompatReport, failure_message
from registry.bases.target import BaseTarget, target_from_module
from registry.errors import ArgumentError, BaseModelMismatchError, RegistryError
from registry.store.results import AdapterVersion

if TYPE_CHECKING:
    import torch

    from registry import Registry

BASE = "__base__"  # PEFT's adapter name for "no adapter" in a mixed batch


class PoolCompatibilityWarning(UserWarning):
    """A version was put in a non-strict pool although a compatibility check failed."""


@dataclass(frozen=True)
class Resident:
    """One version on the model, under ``adapter_name`` in PEFT."""

    ref: str
    digest: str
    method: str
    adapter_name: str
    report: CompatReport


class AdapterPool:
    """``with AdapterPool(Registry.open(), model, max_resident=4) as pool:``
    ``with pool.use("support-bot@prod") as m: m.generate(...)``."""

    def __init__(
        self,
        registry: Registry,
        model: torch.nn.Module,
        *,
        max_resident: int = 8,
        strict: bool = True,
        refresh_seconds: float = 30.0,
    ) -> None:
        if max_resident < 1:
            raise ArgumentError(f"max_resident must be at least 1, not {max_resident}")
        if refresh_seconds < 0:
            raise ArgumentError(f"refresh_seconds must be 0 or more, not {refresh_seconds}")
        self.registry = registry
        self.max_resident = max_resident
        self.strict = strict
        self.refresh_seconds = refresh_seconds
        self._base = model
        self._target: BaseTarget = target_from_module(model)  # before PEFT wraps anything
        self._peft: Any = None
        self._resident: OrderedDict[str, Resident] = OrderedDict()  # digest -> least recent first
        self._reports: dict[str, CompatReport] = {}  # digest -> checked once
        self._refs: dict[str, tuple[AdapterVersion, float]] = {}
        self._lock = threading.RLock()
        self._closed = False

    # -- what callers use -----------------------------------------------------------

    @property
    def model(self) -> Any:
        """What to run: the PeftModel holding the resident adapters (the base before any)."""
        return self._peft if self._peft is not None else self._base

    @property
    def resident(self) -> list[Resident]:
        """The resident versions, least recently used first."""
        with self._lock:
            return list(self._resident.values())

    def add(self, ref: str) -> Resident:
        """Put a version on the model (checked against the base once) without selecting it."""
        with self._lock:
            return self._ensure(ref, keep=())

    @contextmanager
    def use(self, ref: str | None) -> Iterator[Any]:
        """Run the block with ``ref`` active (None: the base alone); yields the model.

        Holds the pool's lock for the whole block.
        """
        with self._lock:
            self._check_open()
            if ref is None:
                if self._peft is None:
                    yield self._base
                    return
                with self._peft.disable_adapter():
                    yield self._peft
                return
            resident = self._ensure(ref, keep=())
            if self._peft.active_adapter != resident.adapter_name:
                self._peft.set_adapter(resident.adapter_name)
            yield self._peft

    @contextmanager
    def batch(self, refs: Sequence[str | None]) -> Iterator[list[str]]:
        """Make every row's adapter resident and yield PEFT ``adapter_names`` for the batch
        (``model(**inputs, adapter_names=names)``; None rows run on the base). LoRA only."""
        with self._lock:
            self._check_open()
            distinct = list(dict.fromkeys(ref for ref in refs if ref is not None))
            if len(distinct) > self.max_resident:
                raise ArgumentError(
                    f"the batch names {len(distinct)} adapters but the pool keeps at most "
                    f"{self.max_resident}; split the batch or raise max_resident"
                )
            keep: list[str] = []
            by_ref: dict[str, Resident] = {}
            for ref in distinct:
                resident = self._ensure(ref, keep=keep)
                keep.append(resident.digest)
                by_ref[ref] = resident
            for ref, resident in by_ref.items():
                if resident.method != "lora" or self._is_dora(resident.digest):
                    raise ArgumentError(
                        f"{ref} is {resident.method}: PEFT mixes only plain LoRA adapters "
                        "in one batch; run it with pool.use(ref)"
                    )
            yield [BASE if ref is None else by_ref[ref].adapter_name for ref in refs]

    def close(self) -> torch.nn.Module:
        """Remove every adapter and give back the base module, exactly as it was."""
        with self._lock:
            if not self._closed and self._peft is not None:
                # Tuner methods inject layers that unload() removes; prompt learning
                # leaves the base untouched and has nothing to unload.
                tuner = self._peft.base_model
                if callable(getattr(tuner, "unload", None)):
                    self._base = self._peft.unload()
                else:
                    self._base = self._peft.get_base_model()
                self._peft = None
            self._resident.clear()
            self._closed = True
            return self._base

    def __enter__(self) -> AdapterPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- keeping adapters resident ----------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RegistryError("this adapter pool is closed; make a new AdapterPool")

    def _version(self, ref: str) -> AdapterVersion:
        now = time.monotonic()
        cached = self._refs.get(ref)
        if cached is not None and now - cached[1] < self.refresh_seconds:
            return cached[0]
        version = self.registry.get(ref)
        self._refs[ref] = (version, now)
        return version

    def _ensure(self, ref: str, keep: Sequence[str]) -> Resident:
        self._check_open()
        version = self._version(ref)
        resident = self._resident.get(version.digest)
        if resident is not None:
            self._resident.move_to_end(version.digest)
            return resident
        first = next(iter(self._resident.values()), None)
        if first is not None and first.method != version.method:
            raise ArgumentError(
                f"{version.ref} is {version.method} but this pool holds {first.method} "
                "adapters (PEFT keeps one method per model); use another pool for it"
            )
        report = self._check(version)
        name = "a" + version.digest.partition(":")[2][:16]
        path = self.registry.materialize(version.ref)
        if self._peft is None:
            from peft import PeftModel

            self._peft = PeftModel.from_pretrained(
                self._base, str(path), adapter_name=name, is_trainable=False
            )
        else:
            self._peft.load_adapter(str(path), adapter_name=name, is_trainable=False)
        resident = Resident(version.ref, version.digest, version.method, name, report)
        self._resident[version.digest] = resident
        self._evict(keep=(*keep, version.digest))
        return resident

    def _check(self, version: AdapterVersion) -> CompatReport:
        report = self._reports.get(version.digest)
        if report is None:
            report = self.registry.check_compat(version.ref, self._target)
            if not report.ok:
                message = failure_message(
                    report, ["pass strict=False to AdapterPool to load anyway"]
                )
                if self.strict:
                    raise BaseModelMismatchError(message, report)
                warnings.warn(message, PoolCompatibilityWarning, stacklevel=4)
            self._reports[version.digest] = report
        return report

    def _evict(self, keep: Sequence[str]) -> None:
        while len(self._resident) > self.max_resident:
            victim = next((d for d in self._resident if d not in keep), None)
            if victim is None:
                return
            gone = self._resident.pop(victim)
            if self._peft.active_adapter == gone.adapter_name:
                newest = next(reversed(self._resident.values()))
                self._peft.set_adapter(newest.adapter_name)
            self._peft.delete_adapter(gone.adapter_name)

    def _is_dora(self, digest: str) -> bool:
        config = self._peft.peft_config[self._resident[digest].adapter_name]
        return bool(getattr(config, "use_dora", False))
