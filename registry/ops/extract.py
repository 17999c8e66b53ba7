"""Extracting a LoRA adapter from a fully fine-tuned model: ``tuned - base`` per module,
approximated at rank r by a randomized SVD.

Both checkpoints are streamed tensor by tensor (``shards``), so memory holds two tensors
and one delta. Selected by default: every linear weight (and convolution kernel) except the
embeddings and the output head, which can be included. Changes LoRA cannot express (norm
weights, biases, unselected tensors) are counted and named in the result, not dropped
silently.

Orientation: transformers' GPT-2 family stores its projections as ``Conv1D`` with weights
[in, out]; for those the LoRA is written with ``fan_in_fan_out`` like a PEFT adapter for
them. Embedding matrices [vocab, dim] become ``lora_embedding_A``/``B``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from registry.errors import ValidationError
from registry.formats.check_common import EMBEDDING_MODULES
from registry.ops.lowrank import Truncation, randomized_truncate
from registry.ops.methods import DEFAULT_SEED, check_rank
from registry.ops.peft_config import lora_config
from registry.ops.produced import ModuleResult, Produced, energy_parameters
from registry.ops.shards import (
    FLOAT_DTYPES,
    Checkpoint,
    StoredTensor,
    open_checkpoint,
    read_tensor,
)
from registry.ops.terms import Term, term_tensors
from registry.ops.threads import with_operator_threads
from registry.ops.updates import Layout
from registry.progress import NoProgress, Progress

# transformers model types whose linear layers are Conv1D, storing weights as [in, out].
CONV1D_MODEL_TYPES = ("gpt2", "openai-gpt", "imagegpt", "decision_transformer")
_HEADS = ("lm_head", "embed_out")
_TASK_TYPES = (
    ("ForCausalLM", "CAUSAL_LM"),
    ("LMHeadModel", "CAUSAL_LM"),
    ("ForSequenceClassification", "SEQ_CLS"),
    ("ForTokenClassification", "TOKEN_CLS"),
    ("ForQuestionAnswering", "QUESTION_ANS"),
    ("ForConditionalGeneration", "SEQ_2_SEQ_LM"),
)
_SHOWN = 20


@dataclass(frozen=True)
class ExtractSpec:
    rank: int
    targets: tuple[str, ...] = ()  # module names or suffixes; () = every linear layer
    include_embeddings: bool = False
    seed: int = DEFAULT_SEED


def _model_config(directory: Path) -> dict[str, Any]:
    path = directory / "config.json"
    try:
        found = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def default_base_name(directory: Path) -> str:
    """The base's recorded name: ``_name_or_path`` from its config, else the directory name."""
    name = _model_config(Path(directory)).get("_name_or_path")
    if name and not Path(str(name)).is_absolute():
        return str(name)
    return Path(directory).absolute().name


def task_type(config: dict[str, Any]) -> str | None:
    for architecture in config.get("architectures") or []:
        for suffix, task in _TASK_TYPES:
            if str(architecture).endswith(suffix):
                return task
    return None


def _short(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def _selected(module: str, spec: ExtractSpec, info: StoredTensor) -> bool:
    if len(info.shape) < 2 or info.dtype not in FLOAT_DTYPES:
        return False
    if spec.targets:
        return any(module == t or module.endswith("." + t) for t in spec.targets)
    short = _short(module)
    if short in _HEADS or short in EMBEDDING_MODULES:
        return spec.include_embeddings
    return True


def _layout(module: str, info: StoredTensor, conv1d: bool) -> Layout:
    if len(info.shape) > 2:
        return "conv"
    if _short(module) in EMBEDDING_MODULES and _short(module) not in _HEADS:
        return "embedding"
    return "linear_t" if conv1d else "linear"


def _pairs(
    base: Checkpoint, tuned: Checkpoint
) -> Iterator[tuple[StoredTensor, StoredTensor | None, Any, Any]]:
    """Each base tensor with its tuned counterpart and the open files to read them from."""
    tuned_tensors = tuned.tensors()
    tuned_shard = {t.name: shard.path for shard in tuned.shards for t in shard.tensors}
    handles: dict[Path, Any] = {}
    try:
        for shard in base.shards:
            base_handle = handles.setdefault(shard.path, shard.path.open("rb"))
            for info in shard.tensors:
                other = tuned_tensors.get(info.name)
                handle = None
                if other is not None:
                    path = tuned_shard[info.name]
                    handle = handles.get(path) or handles.setdefault(path, path.open("rb"))
                yield info, other, base_handle, handle
    finally:
        for handle in handles.values():
            handle.close()


@dataclass
class _Found:
    """What the pass over both checkpoints collects."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    results: list[ModuleResult] = field(default_factory=list)
    truncations: list[Truncation] = field(default_factory=list)
    modules: set[str] = field(default_factory=set)  # every module with a weight matrix
    not_captured: list[str] = field(default_factory=list)  # changed, but not in the adapter
    mismatched: list[str] = field(default_factory=list)  # missing from tuned, or reshaped

    @property
    def ranks(self) -> dict[str, int]:
        return {r.module: r.rank for r in self.results}


@with_operator_threads
def extract(
    base: Path,
    tuned: Path,
    spec: ExtractSpec,
    *,
    base_model: str | None = None,
    progress: Progress | None = None,
) -> Produced:
    check_rank(spec.rank, "extract")
    progress = progress or NoProgress()
    base_ckpt, tuned_ckpt = open_checkpoint(base), open_checkpoint(tuned)
    model_config = _model_config(base)
    conv1d = model_config.get("model_type") in CONV1D_MODEL_TYPES
    found = _Found()
    progress.start("extracting", base_ckpt.data_bytes)
    try:
        for info, other, base_handle, tuned_handle in _pairs(base_ckpt, tuned_ckpt):
            progress.advance(info.size)
            _one(spec, conv1d, info, other, base_handle, tuned_handle, found)
    finally:
        progress.finish()
    if not found.results:
        raise ValidationError(
            str(tuned),
            ["no selected weight differs from the base: nothing to extract"]
            + [f"{len(found.mismatched)} tensors missing or reshaped"] * bool(found.mismatched),
        )
    return _produced(spec, base_model, model_config, conv1d, found)


def _one(
    spec: ExtractSpec,
    conv1d: bool,
    info: StoredTensor,
    other: StoredTensor | None,
    base_handle: Any,
    tuned_handle: Any,
    found: _Found,
) -> None:
    if other is None or other.shape != info.shape:
        found.mismatched.append(info.name)
        return
    module = info.name[: -len(".weight")] if info.name.endswith(".weight") else ""
    selected = bool(module) and _selected(module, spec, info)
    if module and len(info.shape) >= 2:
        found.modules.add(module)
    before = read_tensor(base_handle, info)
    after = read_tensor(tuned_handle, other)
    if torch.equal(before, after.to(before.dtype)):
        return
    if not selected:
        found.not_captured.append(info.name)
        return
    delta = after.to(torch.float32) - before.to(torch.float32)
    del before, after
    layout = _layout(module, info, conv1d)
    matrix = delta.T if layout in ("linear_t", "embedding") else delta.flatten(1)
    truncation = randomized_truncate(matrix, spec.rank, seed=spec.seed)
    kernel = tuple(info.shape[2:]) if layout == "conv" else ()
    found.tensors.update(term_tensors(Term(module, truncation.low, layout, kernel)))
    found.results.append(ModuleResult(module, truncation.low.rank, truncation.retained))
    found.truncations.append(truncation)


def _produced(
    spec: ExtractSpec,
    base_model: str | None,
    model_config: dict[str, Any],
    conv1d: bool,
    found: _Found,
) -> Produced:
    ranks = found.ranks
    # Plain names select exactly the extracted modules only when every module of the model
    # with such a name was extracted; otherwise list the modules by full name.
    shorts = sorted({_short(m) for m in ranks})
    exact = all(m in ranks for m in found.modules if _short(m) in shorts)
    template = {"target_modules": shorts if exact else sorted(ranks)}
    config = lora_config(
        {"task_type": task_type(model_config)},
        [template],
        ranks,
        base_model=base_model,
        revision=None,
        fan_in_fan_out=conv1d,
    )
    parameters: dict[str, Any] = {"rank": spec.rank, "modules": len(ranks), "seed": spec.seed}
    if spec.targets:
        parameters["targets"] = list(spec.targets)
    parameters.update(energy_parameters(found.results, found.truncations))
    notes = []
    if found.not_captured:
        parameters["not_captured"] = found.not_captured[:_SHOWN]
        parameters["not_captured_count"] = len(found.not_captured)
        notes.append(
            f"{len(found.not_captured)} changed tensor(s) are not in the adapter (LoRA covers "
            f"the selected weight matrices only): {_some(found.not_captured)}"
        )
    if found.mismatched:
        parameters["missing_or_reshaped_count"] = len(found.mismatched)
        notes.append(
            f"{len(found.mismatched)} base tensor(s) are missing from the tuned model or "
            f"changed shape: {_some(found.mismatched)}"
        )
    return Produced("lora", config, found.tensors, tuple(found.results), parameters, tuple(notes))


def _some(names: list[str]) -> str:
    return ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
