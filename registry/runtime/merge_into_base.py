"""Merging a stored adapter version into base weights on disk (``adapters merge``).

Refuses what cannot be folded (prompt/prefix tuning, bottleneck adapters) with the
reason, then checks the version against the base directory exactly as loading does
(binding, fingerprint, quantization) and refuses a mismatch unless forced; the streaming
merge itself is ``registry.ops.merge``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import BaseModelMismatchError
from registry.progress import Progress

if TYPE_CHECKING:
    from registry.bases.compat import CompatReport
    from registry.ops.merge import MergeReport
    from registry.ops.tensors import AdapterTensors
    from registry.store.base_records import KnownBase
    from registry.store.results import AdapterVersion
    from registry.store.store import Store


@dataclass(frozen=True)
class MergeResult:
    ref: str
    digest: str
    merged: MergeReport
    compat: CompatReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            **self.merged.to_dict(),
            "compat": self.compat.to_dict(),
        }


class MergeCompatibilityWarning(UserWarning):
    """A merge went ahead (forced) although a compatibility check failed or warned."""


def merge_version(
    store: Store,
    ref: str,
    base: Path,
    out: Path,
    *,
    force: bool = False,
    max_shard_bytes: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> MergeResult:
    return merge_resolved(
        store, store.resolve(ref), base, out, force=force, max_shard_bytes=max_shard_bytes,
        overwrite=overwrite, progress=progress,
    )  # fmt: skip


def merge_resolved(
    store: Store,
    version: AdapterVersion,
    base: Path,
    out: Path,
    *,
    force: bool = False,
    max_shard_bytes: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    known_base: KnownBase | None = None,
) -> MergeResult:
    """Merge ``version``, whose blobs ``store`` holds, into the checkpoint in ``base``
    (``known_base``: what a server's catalog knows of the base it was trained on)."""
    from registry.bases.target import target_from_directory
    from registry.ops.fold import require_foldable
    from registry.ops.merge import merge_checkpoint
    from registry.runtime.derive import parent_tensors
    from registry.store.base_records import compat_for_target

    require_foldable(version.method)
    target = target_from_directory(Path(base))
    report = compat_for_target(store, version, target, known=known_base)
    if not report.ok:
        message = (
            f"refusing to merge: {report.summary()}. To proceed: pass force=True (--force) "
            "to merge anyway"
        )
        if not force:
            raise BaseModelMismatchError(message, report)
        warnings.warn(message, MergeCompatibilityWarning, stacklevel=4)
    merged = merge_checkpoint(
        saved_names(parent_tensors(store, version), Path(base)),
        Path(base),
        Path(out),
        max_shard_bytes=max_shard_bytes,
        overwrite=overwrite,
        progress=progress,
    )
    return MergeResult(version.ref, version.digest, merged, report)


def saved_names(adapter: AdapterTensors, base: Path) -> AdapterTensors:
    """``adapter`` with the live module paths it names (transformers 5 renames some modules
    on load) renamed to the paths the checkpoint in ``base`` stores them under."""
    from registry.bases.checkpoint_names import layout_of_config
    from registry.bases.target import read_model_config
    from registry.ops.shards import open_checkpoint
    from registry.ops.tensors import AdapterTensors

    stored = open_checkpoint(base).tensors()
    if all(_bound(key, stored) for key in adapter.tensors):
        return adapter  # the usual case: no transformers import
    layout = layout_of_config(read_model_config(base))
    if layout is None:
        return adapter
    tensors = {layout.saved_adapter_key(k, stored): t for k, t in adapter.tensors.items()}
    return AdapterTensors(adapter.method, adapter.config, tensors)


def _bound(key: str, stored: Mapping[str, object]) -> bool:
    """Whether an adapter key names a module (or full tensor) ``stored`` has."""
    parts = key.removeprefix("base_model.model.").split(".")
    return any(
        ".".join(parts[:end]) + ".weight" in stored or ".".join(parts[:end]) in stored
        for end in range(1, len(parts) + 1)
    )
