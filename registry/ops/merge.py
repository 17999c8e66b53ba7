"""Folding an adapter into a base checkpoint on disk, one tensor at a time.

For each shard of the base, a new shard is written: its header first (names, dtypes and
shapes do not change), then each tensor read, updated by the adapter modules that target
it, cast back to its dtype and written. A module's delta is computed only when its tensor
comes up, so memory holds one base tensor and one delta, never the model. The output is
assembled in a temporary directory beside ``out`` and renamed into place at the end, with
the shard index and the base's config, generation config and tokenizer files.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch

from registry.errors import (
    BaseModelMismatchError,
    ExportError,
    FormatError,
    UnsupportedMethodError,
)
from registry.faults import fault_point
from registry.ops.fold import fold_groups, module_updates, replacement_updates
from registry.ops.shards import (
    FLOAT_DTYPES,
    INDEX_NAME,
    SINGLE_NAME,
    Checkpoint,
    Shard,
    ShardWriter,
    StoredTensor,
    open_checkpoint,
    read_tensor,
    write_index,
)
from registry.ops.tensors import AdapterTensors
from registry.ops.threads import with_operator_threads
from registry.ops.ties import checkpoint_ties, resolve_ties
from registry.ops.updates import WeightUpdate, apply_update
from registry.progress import NoProgress, Progress

# Files beside the weights that are weights themselves (never copied into the output).
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".gguf")


@dataclass(frozen=True)
class MergeReport:
    directory: Path
    shards: int
    tensors: int
    tensors_changed: int
    bytes_written: int
    copied: tuple[str, ...]  # config and tokenizer files copied from the base
    seconds: float

    def to_dict(self) -> dict[str, object]:
        return {
            "directory": str(self.directory),
            "shards": self.shards,
            "tensors": self.tensors,
            "tensors_changed": self.tensors_changed,
            "bytes_written": self.bytes_written,
            "copied": list(self.copied),
            "seconds": round(self.seconds, 3),
        }


@dataclass
class _Plan:
    """Which adapter modules touch which base tensor; deltas are computed on demand."""

    adapter: AdapterTensors
    groups: dict[str, dict[str, torch.Tensor]]
    by_target: dict[str, list[str]]  # base tensor -> modules whose updates touch it
    replacements: dict[str, WeightUpdate]
    shapes: Mapping[str, torch.Size]
    done: set[str] = field(default_factory=set)
    pending: dict[str, list[WeightUpdate]] = field(default_factory=dict)

    def updates_for(self, name: str) -> list[WeightUpdate]:
        """The updates for base tensor ``name``, in the order fold applies them."""
        found = [self.replacements[name]] if name in self.replacements else []
        for module in self.by_target.pop(name, []):
            if module in self.done:
                continue
            self.done.add(module)
            # A module's other updates (a bias met before its weight) wait for their tensor.
            for update in module_updates(self.adapter, module, self.groups[module], self.shapes):
                self.pending.setdefault(update.target, []).append(update)
        found.extend(self.pending.pop(name, []))
        return found

    def leftovers(self) -> list[str]:
        return sorted(t for t, ups in self.pending.items() if any(not u.optional for u in ups))


def _touches_bias(adapter: AdapterTensors, parts: Mapping[str, torch.Tensor]) -> bool:
    return adapter.method == "ia3" or "lora_B.bias" in parts or "ln_tuning_layers.bias" in parts


def _plan(adapter: AdapterTensors, checkpoint: Checkpoint) -> _Plan:
    stored = checkpoint.tensors()
    shapes = {name: torch.Size(t.shape) for name, t in stored.items()}
    groups, rest = fold_groups(adapter)
    replacements = {u.target: u for u in replacement_updates(rest)}
    pending = _tied_updates(adapter, checkpoint, groups, replacements, shapes)
    missing = [f"{module}.weight" for module in groups if f"{module}.weight" not in stored]
    biasless = sorted(
        m for m, parts in groups.items() if "lora_B.bias" in parts and f"{m}.bias" not in stored
    )
    if biasless:
        raise UnsupportedMethodError(
            f"cannot merge this adapter: lora_bias trains a bias for {biasless[0]}"
            + (f" (and {len(biasless) - 1} more)" if len(biasless) > 1 else "")
            + ", which has none in the base checkpoint (PEFT cannot merge it either); load it "
            "with mode='peft' instead"
        )
    missing += [target for target in replacements if target not in stored]
    if missing:
        shown = ", ".join(sorted(missing)[:5])
        raise BaseModelMismatchError(
            f"the base checkpoint has no tensor {shown}"
            + (f" (and {len(missing) - 5} more)" if len(missing) > 5 else "")
            + "; is this the base the adapter was trained on?",
            None,
        )
    by_target: dict[str, list[str]] = {}
    for module, parts in groups.items():
        by_target.setdefault(f"{module}.weight", []).append(module)
        if _touches_bias(adapter, parts) and f"{module}.bias" in stored:
            by_target.setdefault(f"{module}.bias", []).append(module)
    for target in list(by_target) + list(replacements):
        if stored[target].dtype not in FLOAT_DTYPES:
            raise FormatError(
                f"{target} is stored as {stored[target].dtype}: an adapter can only be merged "
                "into floating-point weights (dequantize the base first)"
            )
    for target in pending:
        by_target.setdefault(target, [])
    return _Plan(adapter, groups, by_target, replacements, shapes, pending=pending)


def _tied_updates(
    adapter: AdapterTensors,
    checkpoint: Checkpoint,
    groups: dict[str, dict[str, torch.Tensor]],
    replacements: dict[str, WeightUpdate],
    shapes: Mapping[str, torch.Size],
) -> dict[str, list[WeightUpdate]]:
    """Updates on a tensor the checkpoint stores once for two names (a tied ``lm_head``),
    taken out of ``groups`` and ``replacements`` and resolved as a live load does."""
    try:
        config = json.loads((checkpoint.directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        config = {}
    targets = [f"{module}.weight" for module in groups] + list(replacements)
    canonical = checkpoint_ties(targets, shapes, config if isinstance(config, dict) else {})
    if not canonical:
        return {}
    found = [replacements.pop(t) for t in list(replacements) if t in canonical]
    for module in [m for m in groups if f"{m}.weight" in canonical]:
        found.extend(module_updates(adapter, module, groups.pop(module), shapes))
    resolved = resolve_ties(found, canonical)
    if resolved.problem is not None:
        raise UnsupportedMethodError(
            f"cannot merge this adapter into the checkpoint: {resolved.problem}; load it "
            "with mode='peft' instead"
        )
    pending: dict[str, list[WeightUpdate]] = {}
    for update in resolved.updates:
        pending.setdefault(update.target, []).append(update)
    return pending


def _apply(tensor: torch.Tensor, name: str, updates: list[WeightUpdate]) -> torch.Tensor:
    for update in updates:
        expected = update.expected_shape()
        if expected is not None and expected != tuple(tensor.shape):
            raise BaseModelMismatchError(
                f"{name}: the adapter produces shape {list(expected)}, the base has "
                f"{list(tensor.shape)}",
                None,
            )
        tensor = apply_update(tensor, update)
    return tensor


def output_layout(
    checkpoint: Checkpoint, max_shard_bytes: int | None
) -> list[tuple[str, list[StoredTensor]]]:
    """The output files and the tensors each holds: the base's own layout, or new shards of
    at most ``max_shard_bytes`` (a larger single tensor gets a shard of its own)."""
    if max_shard_bytes is None:
        return [(shard.path.name, list(shard.tensors)) for shard in checkpoint.shards]
    groups: list[list[StoredTensor]] = [[]]
    size = 0
    for shard in checkpoint.shards:
        for tensor in shard.tensors:
            if groups[-1] and size + tensor.size > max_shard_bytes:
                groups.append([])
                size = 0
            groups[-1].append(tensor)
            size += tensor.size
    if len(groups) == 1:
        return [(SINGLE_NAME, groups[0])]
    count = len(groups)
    return [
        (f"model-{i + 1:05d}-of-{count:05d}.safetensors", group) for i, group in enumerate(groups)
    ]


@with_operator_threads
def merge_checkpoint(
    adapter: AdapterTensors,
    base: Path,
    out: Path,
    *,
    max_shard_bytes: int | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> MergeReport:
    """Write ``base`` with ``adapter`` folded in to ``out``; see the module docstring."""
    started = time.perf_counter()
    progress = progress or NoProgress()
    base, out = Path(base), Path(out)
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out} exists and is not a directory")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise ExportError(f"{out} exists and is not empty; pass overwrite to replace it")
    if out.resolve() == base.resolve():
        raise ExportError("the output directory must differ from the base directory")
    checkpoint = open_checkpoint(base)
    plan = _plan(adapter, checkpoint)
    layout = output_layout(checkpoint, max_shard_bytes)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        changed, written = _write_shards(checkpoint, layout, plan, staging, progress)
        if plan.leftovers():
            raise BaseModelMismatchError(
                f"the base checkpoint has no tensor {', '.join(plan.leftovers()[:5])}", None
            )
        if len(layout) > 1 or layout[0][0] != SINGLE_NAME:
            weight_map = {t.name: name for name, tensors in layout for t in tensors}
            write_index(staging, weight_map, written)
        copied = _copy_side_files(base, staging)
        fault_point("merge.before-rename")
        _put_in_place(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return MergeReport(
        directory=out,
        shards=len(layout),
        tensors=sum(len(tensors) for _, tensors in layout),
        tensors_changed=changed,
        bytes_written=written,
        copied=tuple(copied),
        seconds=time.perf_counter() - started,
    )


def _write_shards(
    checkpoint: Checkpoint,
    layout: list[tuple[str, list[StoredTensor]]],
    plan: _Plan,
    staging: Path,
    progress: Progress,
) -> tuple[int, int]:
    source = {t.name: shard for shard in checkpoint.shards for t in shard.tensors}
    handles: dict[Path, io.BufferedReader] = {}
    changed = written = 0
    progress.start("merging", checkpoint.data_bytes)
    try:
        for file_name, tensors in layout:
            metadata = _metadata(checkpoint, tensors, source)
            writer = ShardWriter(
                staging / file_name, [(t.name, t.dtype, t.shape) for t in tensors], metadata
            )
            try:
                for info in tensors:
                    shard = source[info.name]
                    handle = handles.get(shard.path)
                    if handle is None:
                        handle = handles[shard.path] = shard.path.open("rb")
                    tensor = read_tensor(handle, info)
                    updates = plan.updates_for(info.name)
                    if updates:
                        tensor = _apply(tensor, info.name, updates)
                        changed += 1
                    writer.write(info.name, tensor)
                    del tensor
                    progress.advance(info.size)
            finally:
                writer.close()
            written += writer.bytes_written
            fault_point("merge.shard-written")
    finally:
        for handle in handles.values():
            handle.close()
        progress.finish()
    return changed, written


def _put_in_place(staging: Path, out: Path) -> None:
    """Rename ``staging`` to ``out``. An existing ``out`` is renamed aside first and removed
    only once the new directory is in place: a crash at any moment leaves ``out`` complete
    (old or new) or absent, never half deleted as removing it in place would."""
    if not out.exists():
        os.replace(staging, out)
        fault_point("merge.after-rename")
        return
    aside = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:12]}"
    os.replace(out, aside)
    fault_point("merge.moved-aside")
    try:
        os.replace(staging, out)
    except BaseException:
        os.replace(aside, out)  # the old output stays, as if nothing had been tried
        raise
    fault_point("merge.after-rename")
    shutil.rmtree(aside, ignore_errors=True)


def _metadata(
    checkpoint: Checkpoint, tensors: list[StoredTensor], source: Mapping[str, Shard]
) -> dict[str, str]:
    # transformers requires format "pt"; other keys of the base's first shard are kept.
    first = source[tensors[0].name].metadata if tensors else {}
    return {**first, "format": "pt"}


def _copy_side_files(base: Path, staging: Path) -> list[str]:
    copied = []
    for path in sorted(base.iterdir()):
        name = path.name
        if not path.is_file() or name.startswith(".") or name == INDEX_NAME:
            continue
        if name.endswith(_WEIGHT_SUFFIXES) or name.endswith(".index.json"):
            continue
        shutil.copy2(path, staging / name)
        copied.append(name)
    return copied
