"""Side-by-side comparison of two versions: evals, manifest/config differences and, for
two LoRA adapters, how alike their weight updates are, module by module."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.lifecycle.results import Comparison, EvalDiff, FieldDiff, ModuleSimilarity
from registry.store.blob_store import BlobBackend
from registry.store.results import AdapterVersion

if TYPE_CHECKING:
    import torch

_LORA_KEY = re.compile(r"^(?P<module>.+)\.lora_(?:embedding_)?(?P<which>[AB])(?:\.weight)?$")
_PREFIX = "base_model.model."


def compare_versions(a: AdapterVersion, b: AdapterVersion, blobs: BlobBackend) -> Comparison:
    similarity, note, unmatched = _similarity(a, b, blobs)
    return Comparison(
        a=a.ref,
        b=b.ref,
        digest_a=a.digest,
        digest_b=b.digest,
        evals=_eval_diffs(a, b),
        fields=_field_diffs(a, b),
        similarity=similarity,
        similarity_note=note,
        unmatched_modules=unmatched,
    )


def _eval_diffs(a: AdapterVersion, b: AdapterVersion) -> tuple[EvalDiff, ...]:
    left = {(s.metric, s.dataset, s.split): s.value for s in a.latest_evals()}
    right = {(s.metric, s.dataset, s.split): s.value for s in b.latest_evals()}
    return tuple(
        EvalDiff(metric, dataset, split, left.get(key), right.get(key))
        for key in sorted(left.keys() | right.keys())
        for metric, dataset, split in [key]
    )


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for key in sorted(value):
            _flatten(f"{prefix}.{key}", value[key], out)
    else:
        out[prefix] = value


def _described(version: AdapterVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "method": version.method,
        "source_format": version.manifest.source_format,
        "base_model.name": version.base_model.name,
        "base_model.revision": version.base_model.revision,
        "base_model.fingerprint": version.base_model.fingerprint,
        "training_data": sorted(f"sha256:{t.sha256}" for t in version.manifest.training_data),
        "size_bytes": version.size_bytes,
    }
    _flatten("config", version.manifest.config, out)
    return out


def _field_diffs(a: AdapterVersion, b: AdapterVersion) -> tuple[FieldDiff, ...]:
    left, right = _described(a), _described(b)
    return tuple(
        FieldDiff(key, left.get(key), right.get(key))
        for key in sorted(left.keys() | right.keys())
        if left.get(key) != right.get(key)
    )


# -- LoRA delta similarity -------------------------------------------------------------


@dataclass(frozen=True)
class LoraModule:
    a: torch.Tensor  # (r, in)
    b: torch.Tensor  # (out, r)
    scaling: float


def _similarity(
    a: AdapterVersion, b: AdapterVersion, blobs: BlobBackend
) -> tuple[tuple[ModuleSimilarity, ...], str | None, tuple[str, ...]]:
    if a.method != "lora" or b.method != "lora":
        return (
            (),
            f"per-module similarity needs two LoRA adapters ({a.ref} is {a.method}, "
            f"{b.ref} is {b.method})",
            (),
        )
    left, right = lora_modules(a, blobs), lora_modules(b, blobs)
    results = lora_delta_cosines(left, right)
    unmatched = tuple(sorted((left.keys() | right.keys()) - {r.module for r in results}))
    notes = []
    if not results:
        notes.append("no module is adapted in both with the same shape")
    if any(v.manifest.config.get("use_dora") for v in (a, b)):
        notes.append("DoRA magnitude vectors are not part of the compared deltas")
    return results, "; ".join(notes) or None, unmatched


def lora_scaling(config: Mapping[str, Any], module: str, rank: int) -> float:
    """PEFT's scaling of ``module`` (see ``registry.ops.lora.module_scaling``)."""
    # Imported here: ops pulls in torch, which comparing configs and evals does not need.
    from registry.ops.lora import module_scaling

    return module_scaling(config, module, rank)


def lora_modules(version: AdapterVersion, blobs: BlobBackend) -> dict[str, LoraModule]:
    """The A and B factors of every LoRA module of a stored version, with its scaling."""
    from safetensors import safe_open

    factors: dict[str, dict[str, torch.Tensor]] = {}
    for entry in version.files:
        if entry.role != "weights" or not entry.path.endswith(".safetensors"):
            continue
        with safe_open(str(blobs.path(entry.sha256)), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118  (safe_open is not a mapping)
                match = _LORA_KEY.match(key)
                if match:
                    module = match["module"].removeprefix(_PREFIX)
                    factors.setdefault(module, {})[match["which"]] = handle.get_tensor(key)
    config = version.manifest.config
    return {
        module: LoraModule(
            parts["A"], parts["B"], lora_scaling(config, module, int(parts["A"].shape[0]))
        )
        for module, parts in sorted(factors.items())
        if "A" in parts and "B" in parts
    }


def lora_delta_cosines(
    left: Mapping[str, LoraModule], right: Mapping[str, LoraModule]
) -> tuple[ModuleSimilarity, ...]:
    """Cosine similarity of the flattened weight updates s·B·A per shared module.

    Computed from the factors without forming the dense updates:
    <B1A1, B2A2> = sum((B1ᵀB2) ∘ (A1A2ᵀ)), an r1×r2 product, in float64.
    Only modules adapted in both, with equal update shapes, are compared.
    """
    results = []
    for module in sorted(left.keys() & right.keys()):
        x, y = left[module], right[module]
        ax, bx = x.a.reshape(x.a.shape[0], -1).double(), x.b.reshape(x.b.shape[0], -1).double()
        ay, by = y.a.reshape(y.a.shape[0], -1).double(), y.b.reshape(y.b.shape[0], -1).double()
        shape = (int(bx.shape[0]), int(ax.shape[1]))
        if shape != (int(by.shape[0]), int(ay.shape[1])):
            continue

        norm_x = math.sqrt(max(_inner(bx, ax, bx, ax), 0.0)) * abs(x.scaling)
        norm_y = math.sqrt(max(_inner(by, ay, by, ay), 0.0)) * abs(y.scaling)
        dot = _inner(bx, ax, by, ay) * x.scaling * y.scaling
        cosine = None
        if norm_x > 0 and norm_y > 0:
            cosine = max(-1.0, min(1.0, dot / (norm_x * norm_y)))
        results.append(ModuleSimilarity(module, cosine, norm_x, norm_y, shape))
    return tuple(results)


def _inner(b1: torch.Tensor, a1: torch.Tensor, b2: torch.Tensor, a2: torch.Tensor) -> float:
    """Frobenius inner product <B1·A1, B2·A2> from the factors."""
    return float(((b1.T @ b2) * (a1 @ a2.T)).sum())
