"""Base-model weight fingerprints, algorithm ``afp-1`` (docs/fingerprint.md): the values.

A fingerprint records every weight tensor's name, dtype and shape plus a deterministic sample of
64 raw values spread over the tensor; in exhaustive mode also a sha256 of each tensor's whole
raw bytes, which catches a single changed value. Two digests summarise it: ``structure``
(names and shapes) and ``content`` (names, dtypes, shapes and the sampled bytes). The
per-tensor samples tell a dtype cast (fp32 -> bf16) apart from different weights.

Where the rest lives, all under ``registry.bases``:

- ``sampling``: the algorithm (sampled indices, digests, assembling a ``Fingerprint``);
- ``exact_cast``: when two values in different dtypes are one weight cast;
- ``tensor_digests``: exhaustive mode's full-content digests and their cache;
- ``file_source``: safetensors files and directories, sharded or not, read through mmap;
- ``hub_cache``: snapshots in the local Hugging Face cache, offline;
- ``module_source``: a live ``torch.nn.Module`` (PEFT / DDP / compile wrappers unwrapped);
- ``comparison``: ``compare(a, b)``, the ``FingerprintComparison`` and its verdicts;
- ``fingerprint_json``: a fingerprint to and from its stored JSON form.

Importing these modules does not import torch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from registry.bases.sample_values import decode_sample
from registry.errors import FingerprintError
from registry.formats.text import join_problems

__all__ = [
    "ALGORITHM",
    "SAMPLES_PER_TENSOR",
    "Fingerprint",
    "TensorSample",
    "name_key",
    "select_names",
]

ALGORITHM = "afp-1"
SAMPLES_PER_TENSOR = 64


def name_key(name: str) -> bytes:
    """The order of tensor names everywhere in the algorithm: by their UTF-8 bytes."""
    return name.encode("utf-8")


@dataclass(frozen=True)
class TensorSample:
    """One tensor as the fingerprint saw it: dtype, shape and its sampled raw bytes."""

    dtype: str  # safetensors dtype string
    shape: tuple[int, ...]
    sample: bytes  # little-endian element bytes at sample_indices(), in stratum order

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def values(self) -> list[float] | list[int] | None:
        """The sampled values decoded, or None for dtypes compared by bytes only."""
        decoded = decode_sample(self.dtype, self.sample)
        return None if decoded is None else decoded[1]


@dataclass(frozen=True)
class Fingerprint:
    """An ``afp-1`` fingerprint. ``tensors`` may hold only some tensors' samples (``subset``);
    the digests and counts always describe the whole model."""

    algorithm: str
    structure: str  # "sha256:<hex>" over names and shapes
    content: str  # "sha256:<hex>" over names, dtypes, shapes and samples
    tensor_count: int
    total_params: int
    tensors: Mapping[str, TensorSample] = field(repr=False)
    # Exhaustive mode: "sha256:<hex>" of each tensor's whole raw bytes, for some or all of
    # the tensors sampled. Not part of ``content``, so sampled and exhaustive fingerprints of
    # the same weights share their digests; ``compare`` checks these where both sides have them.
    digests: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        # Sorted, read-only: equal fingerprints iterate alike, and nobody edits a stored one.
        ordered = dict(sorted(self.tensors.items(), key=lambda item: name_key(item[0])))
        object.__setattr__(self, "tensors", MappingProxyType(ordered))
        stray = sorted(set(self.digests) - set(ordered), key=name_key)
        if stray:
            raise FingerprintError(f"full digests without samples: {join_problems(stray)}")
        digests = dict(sorted(self.digests.items(), key=lambda item: name_key(item[0])))
        object.__setattr__(self, "digests", MappingProxyType(digests))

    def __hash__(self) -> int:
        return hash((self.algorithm, self.structure, self.content, frozenset(self.tensors)))

    @property
    def is_exhaustive(self) -> bool:
        """Whether every kept tensor also has a full-content digest."""
        return bool(self.tensors) and len(self.digests) == len(self.tensors)

    def with_digests(self, digests: Mapping[str, str]) -> Fingerprint:
        """This fingerprint with full-content digests added (exhaustive mode)."""
        return replace(self, digests={**self.digests, **digests})

    @property
    def is_complete(self) -> bool:
        """Whether every tensor's sample is kept (false after ``subset``)."""
        return len(self.tensors) == self.tensor_count

    def subset(self, names: Iterable[str]) -> Fingerprint:
        """Keep the samples of ``names`` only; digests and counts are unchanged.

        A name selects the tensor of that name and every tensor below it, so a module path
        (``model.layers.0.self_attn.q_proj``) keeps its weight and bias.
        """
        keep = select_names(self.tensors, names, "fingerprint")
        return replace(
            self,
            tensors={name: self.tensors[name] for name in keep},
            digests={name: self.digests[name] for name in keep if name in self.digests},
        )


def select_names(
    tensors: Mapping[str, TensorSample], names: Iterable[str], label: str
) -> list[str]:
    """Tensor names equal to one of ``names`` or below it; every name must select something."""
    keep: set[str] = set()
    unknown: list[str] = []
    for wanted in names if not isinstance(names, str) else [names]:
        hits = {n for n in tensors if n == wanted or n.startswith(wanted + ".")}
        if not hits:
            unknown.append(wanted)
        keep |= hits
    if unknown:
        raise FingerprintError(f"{label} has no samples for {join_problems(sorted(unknown))}")
    return sorted(keep, key=name_key)
