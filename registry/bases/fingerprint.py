"""Base-model weight fingerprints, algorithm ``afp-1`` (specified in docs/fingerprint.md).

A fingerprint records every weight tensor's name, dtype and shape plus a deterministic sample of
64 raw values spread over the tensor. Two digests summarise it: ``structure`` (names and shapes)
and ``content`` (names, dtypes, shapes and the sampled bytes). The per-tensor samples tell a
dtype cast (fp32 -> bf16) apart from different weights; ``compare`` gives the verdict.

Sources, which give the same fingerprint for the same weights:

- ``fingerprint_directory``: safetensors files, sharded or not. Only headers and the sampled
  bytes are read, through mmap; no torch.
- ``fingerprint_hub_cache``: a snapshot in the local Hugging Face cache, offline.
- ``fingerprint_module``: a live ``torch.nn.Module`` (PEFT / DDP / compile wrappers unwrapped).

Importing this module does not import torch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import itertools
import json
import math
import mmap
import os
import re
import struct
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from registry.errors import FingerprintError, FormatError, UnsafeFormatError
from registry.formats.dtypes import DTYPE_BITS as FORMAT_DTYPE_BITS

if TYPE_CHECKING:
    import torch

__all__ = [
    "ALGORITHM",
    "SAMPLES_PER_TENSOR",
    "CachedSnapshot",
    "Fingerprint",
    "FingerprintComparison",
    "TensorSample",
    "Verdict",
    "cached_snapshot",
    "compare",
    "fingerprint_directory",
    "fingerprint_files",
    "fingerprint_hub_cache",
    "fingerprint_module",
    "fingerprint_path_or_hub",
    "hub_cache_dir",
    "sample_indices",
]

ALGORITHM = "afp-1"
SAMPLES_PER_TENSOR = 64

Verdict = Literal["identical", "cast", "different", "structure-mismatch"]

# Bits per element of every safetensors dtype (the format's own table). Sub-byte dtypes are
# sampled byte by byte.
DTYPE_BITS: Mapping[str, int] = MappingProxyType(FORMAT_DTYPE_BITS)

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HEX = re.compile(r"[0-9a-f]+")
_COMMIT = re.compile(r"[0-9a-f]{40}")
_REPO_ID = re.compile(r"(?:[\w.-]+/)?[\w.-]{1,96}", re.ASCII)

# ---------------------------------------------------------------------------------------------
# Values


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
        decoded = _decode(self.dtype, self.sample)
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

    def __post_init__(self) -> None:
        # Sorted, read-only: equal fingerprints iterate alike, and nobody edits a stored one.
        ordered = dict(sorted(self.tensors.items(), key=lambda item: _utf8(item[0])))
        object.__setattr__(self, "tensors", MappingProxyType(ordered))

    def __hash__(self) -> int:
        return hash((self.algorithm, self.structure, self.content, frozenset(self.tensors)))

    @property
    def is_complete(self) -> bool:
        """Whether every tensor's sample is kept (false after ``subset``)."""
        return len(self.tensors) == self.tensor_count

    def subset(self, names: Iterable[str]) -> Fingerprint:
        """Keep the samples of ``names`` only; digests and counts are unchanged.

        A name selects the tensor of that name and every tensor below it, so a module path
        (``model.layers.0.self_attn.q_proj``) keeps its weight and bias.
        """
        keep = _select_names(self.tensors, names, "fingerprint")
        return Fingerprint(
            self.algorithm,
            self.structure,
            self.content,
            self.tensor_count,
            self.total_params,
            {name: self.tensors[name] for name in keep},
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; samples are base64."""
        return {
            "algorithm": self.algorithm,
            "structure": self.structure,
            "content": self.content,
            "tensor_count": self.tensor_count,
            "total_params": self.total_params,
            "tensors": {
                name: {
                    "dtype": t.dtype,
                    "shape": list(t.shape),
                    "sample": base64.b64encode(t.sample).decode("ascii"),
                }
                for name, t in self.tensors.items()
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fingerprint:
        """Parse ``to_dict`` output, checking every field; a complete one is recomputed."""
        return _parse_fingerprint(data)


@dataclass(frozen=True)
class FingerprintComparison:
    """What ``compare(a, b)`` found; ``missing`` are in ``a`` only, ``extra`` in ``b`` only."""

    verdict: Verdict
    summary: str  # one sentence for reports
    compared: tuple[str, ...] = ()  # tensors whose samples were compared
    sampled_values: int = 0
    differing_values: int = 0
    differing_share: float = 0.0  # differing_values / sampled_values
    most_different: tuple[str, ...] = ()  # up to 5 names, highest differing share first
    tensor_shares: Mapping[str, float] = field(default_factory=dict, hash=False)  # >0 only
    dtype_changes: tuple[tuple[str, str], ...] = ()  # distinct (a dtype, b dtype) pairs
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    mismatched: tuple[str, ...] = ()  # same name, other shape

    @property
    def same_weights(self) -> bool:
        """True for "identical" and "cast"."""
        return self.verdict in ("identical", "cast")


@dataclass(frozen=True)
class CachedSnapshot:
    """A model snapshot found in the local Hugging Face cache."""

    repo_id: str
    commit: str
    path: Path


# ---------------------------------------------------------------------------------------------
# The algorithm


def sample_indices(name: str, count: int) -> list[int]:
    """The sampled unit indices of a tensor with ``count`` units, in stratum order.

    ``[0, count)`` is cut into K = min(count, 64) strata; stratum j picks
    ``h_j mod length`` where h_j is the first 8 bytes (little-endian) of
    sha256(utf8(name) + b"\\0" + ascii(j)).
    """
    strata = min(count, SAMPLES_PER_TENSOR)
    seed = hashlib.sha256(_utf8(name) + b"\0")
    indices: list[int] = []
    for j in range(strata):
        low = j * count // strata
        high = (j + 1) * count // strata
        hasher = seed.copy()
        hasher.update(str(j).encode("ascii"))
        pick = int.from_bytes(hasher.digest()[:8], "little")
        indices.append(low + pick % (high - low))
    return indices


def _units(dtype: str, shape: Sequence[int]) -> tuple[int, int]:
    """(unit count, unit size in bytes): elements, or bytes for sub-byte dtypes."""
    bits = DTYPE_BITS[dtype]
    numel = math.prod(shape)
    if bits % 8:
        return numel * bits // 8, 1
    return numel, bits // 8


def _utf8(name: str) -> bytes:
    return name.encode("utf-8")


def _name_problem(name: str) -> str | None:
    # NUL and LF frame the digest streams; a name holding them would make them ambiguous.
    if "\0" in name or "\n" in name:
        return f"tensor name {name!r} contains NUL or a newline"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"tensor name {name!r} is not valid Unicode"
    return None


def _shape_text(shape: Sequence[int]) -> bytes:
    return ",".join(str(dim) for dim in shape).encode("ascii")


def _digests(tensors: Mapping[str, TensorSample]) -> tuple[str, str]:
    structure = hashlib.sha256()
    content = hashlib.sha256()
    for name in sorted(tensors, key=_utf8):
        t = tensors[name]
        key, shape = _utf8(name), _shape_text(t.shape)
        structure.update(b"%b\0%b\n" % (key, shape))
        content.update(b"%b\0%b\0%b\0%b\n" % (key, t.dtype.encode("ascii"), shape, t.sample))
    return "sha256:" + structure.hexdigest(), "sha256:" + content.hexdigest()


def _assemble(tensors: Mapping[str, TensorSample]) -> Fingerprint:
    problems = [p for p in map(_name_problem, tensors) if p is not None]
    if problems:
        raise FingerprintError("cannot fingerprint: " + _join(problems))
    structure, content = _digests(tensors)
    total = sum(t.numel for t in tensors.values())
    return Fingerprint(ALGORITHM, structure, content, len(tensors), total, tensors)


def _join(problems: Sequence[str], shown: int = 5) -> str:
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more


# ---------------------------------------------------------------------------------------------
# Safetensors files


@dataclass(frozen=True)
class _Declared:
    name: str
    dtype: str
    shape: tuple[int, ...]
    begin: int  # absolute offset in the file
    end: int


_LENGTH = struct.Struct("<Q")
_MAX_HEADER = 100 * 1024 * 1024
_INDEX = "model.safetensors.index.json"
_SINGLE = "model.safetensors"
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


def fingerprint_directory(path: str | os.PathLike[str]) -> Fingerprint:
    """Fingerprint the safetensors weights in a model directory.

    Uses ``model.safetensors.index.json`` when present (sharded), else ``model.safetensors``,
    else every top-level ``*.safetensors`` file. A directory holding only pickle weights is
    refused with ``UnsafeFormatError``: they are never unpickled.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise FingerprintError(f"{directory} is not a directory")
    files, weight_map = _weight_files(directory)
    return _fingerprint_files(files, weight_map, directory)


def fingerprint_files(paths: Iterable[str | os.PathLike[str]]) -> Fingerprint:
    """Fingerprint the tensors of the given safetensors files taken together."""
    files = [Path(p) for p in paths]
    if not files:
        raise FingerprintError("no safetensors files given")
    return _fingerprint_files(files, None, None)


def _weight_files(directory: Path) -> tuple[list[Path], dict[str, str] | None]:
    index = directory / _INDEX
    if not index.is_file():
        others = sorted(directory.glob("*.safetensors.index.json"))
        if len(others) > 1:
            names = ", ".join(p.name for p in others)
            raise FingerprintError(f"{directory} holds several shard indexes ({names})")
        index = others[0] if others else index
    if index.is_file():
        weight_map = _read_index(index)
        shards = sorted(set(weight_map.values()))
        return [directory / shard for shard in shards], weight_map
    if (directory / _SINGLE).is_file():
        return [directory / _SINGLE], None
    found = sorted(p for p in directory.glob("*.safetensors") if p.is_file())
    if found:
        return found, None
    raise _no_safetensors(directory)


def _no_safetensors(directory: Path) -> FingerprintError | UnsafeFormatError:
    pickles = sorted(
        p.name
        for p in directory.iterdir()
        if p.is_file() and (p.suffix in _PICKLE_SUFFIXES or p.name.endswith(".bin.index.json"))
    )
    if pickles:
        return UnsafeFormatError(
            f"{directory} has only pickle weights ({', '.join(pickles[:3])}); they are never "
            "unpickled because loading them can run code. Convert them to safetensors, e.g. "
            "load the model with transformers and save_pretrained() it, then fingerprint that"
        )
    return FingerprintError(f"{directory} holds no safetensors weights")


def _read_index(index: Path) -> dict[str, str]:
    try:
        document = json.loads(index.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{index}: cannot read the shard index: {exc}") from exc
    weight_map = document.get("weight_map") if isinstance(document, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise FormatError(f"{index}: no weight_map object mapping tensor names to shard files")
    problems = [
        f"{name!r} -> {shard!r} is not a shard file name in the same directory"
        for name, shard in weight_map.items()
        if not _is_local_file_name(shard)
    ]
    if problems:
        raise FormatError(f"{index}: " + _join(problems))
    return {str(name): str(shard) for name, shard in weight_map.items()}


def _is_local_file_name(value: object) -> bool:
    # Shards sit next to their index; anything with a path separator or ".." could escape it.
    return (
        isinstance(value, str)
        and value not in ("", ".", "..")
        and "/" not in value
        and "\\" not in value
        and "\0" not in value
    )


def _fingerprint_files(
    files: Sequence[Path], weight_map: Mapping[str, str] | None, directory: Path | None
) -> Fingerprint:
    samples: dict[str, TensorSample] = {}
    where: dict[str, str] = {}
    problems: list[str] = []
    for file in files:
        if not file.is_file():
            problems.append(f"shard {file.name} listed in the index is missing")
            continue
        for name, sample in _sample_file(file).items():
            if name in samples:
                problems.append(f"tensor {name} is in both {where[name]} and {file.name}")
            samples[name] = sample
            where[name] = file.name
    if weight_map is not None:
        present = {file.name for file in files if file.is_file()}
        # A missing shard is reported once above, not once per tensor it should hold.
        problems.extend(
            f"the index puts {name} in {shard}, which does not hold it"
            for name, shard in weight_map.items()
            if shard in present and where.get(name) != shard
        )
    if problems:
        raise FormatError(f"{directory or files[0]}: " + _join(problems))
    return _assemble(samples)


def _sample_file(path: Path) -> dict[str, TensorSample]:
    """Parse the header and read each tensor's sampled bytes through one read-only mmap."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < _LENGTH.size:
                raise _bad_file(path, [f"{size} bytes is too short for a safetensors file"])
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                declared = _parse_header(view, size, path)
                return _read_samples(view, declared)
    except OSError as exc:
        raise FingerprintError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _bad_file(path: Path, problems: Sequence[str]) -> FormatError:
    return FormatError(f"{path}: not a valid safetensors file: " + _join(problems))


def _parse_header(view: mmap.mmap, size: int, path: Path) -> list[_Declared]:
    (length,) = _LENGTH.unpack_from(view, 0)
    available = size - _LENGTH.size
    if length > min(available, _MAX_HEADER):
        raise _bad_file(
            path,
            [f"header length {length} exceeds the {min(available, _MAX_HEADER)} bytes allowed"],
        )
    document = _header_json(view[_LENGTH.size : _LENGTH.size + length], path)
    data_start = _LENGTH.size + length
    problems: list[str] = []
    declared = [
        entry
        for name, value in document.items()
        if name != "__metadata__"
        and (entry := _declared(name, value, data_start, size, problems)) is not None
    ]
    problems.extend(_overlaps(declared))
    if problems:
        raise _bad_file(path, problems)
    return declared


def _header_json(raw: bytes, path: Path) -> dict[str, Any]:
    try:
        document = json.loads(
            raw.decode("utf-8"), object_pairs_hook=_unique_keys, parse_constant=_no_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _bad_file(path, [f"header is not valid UTF-8 JSON: {exc}"]) from exc
    if not isinstance(document, dict):
        raise _bad_file(path, ["header is not a JSON object"])
    return document


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key would let a second declaration hide the first.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"key {key!r} appears twice")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _declared(
    name: str, value: object, data_start: int, size: int, problems: list[str]
) -> _Declared | None:
    label = f"tensor {name!r}"
    found: list[str] = []
    if (problem := _name_problem(name)) is not None:
        found.append(problem)
    entry = value if isinstance(value, dict) else {}
    dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        found.append(f"{label}: unknown dtype {dtype!r}")
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        found.append(f"{label}: shape {shape!r} is not a list of non-negative integers")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_count, offsets))):
        found.append(f"{label}: data_offsets {offsets!r} is not [begin, end]")
    if found:
        problems.extend(found)
        return None
    assert isinstance(dtype, str) and isinstance(shape, list) and isinstance(offsets, list)
    begin, end = data_start + offsets[0], data_start + offsets[1]
    bits = math.prod(shape) * DTYPE_BITS[dtype]
    if begin > end or end > size:
        problems.append(f"{label}: data_offsets {offsets} fall outside the data section")
    elif bits % 8 or end - begin != bits // 8:
        problems.append(f"{label}: {end - begin} bytes cannot hold {dtype} {shape}")
    else:
        return _Declared(name, dtype, tuple(shape), begin, end)
    return None


def _overlaps(declared: Sequence[_Declared]) -> Iterator[str]:
    spans = sorted((d.begin, d.end, d.name) for d in declared if d.end > d.begin)
    for (_, end, first), (begin, _, second) in itertools.pairwise(spans):
        if begin < end:
            yield f"tensors {first!r} and {second!r} overlap"


def _read_samples(view: mmap.mmap, declared: Sequence[_Declared]) -> dict[str, TensorSample]:
    plans = []
    for d in declared:
        count, unit = _units(d.dtype, d.shape)
        plans.append((d, unit, [d.begin + i * unit for i in sample_indices(d.name, count)]))
    _prefetch(view, [(offset, unit) for _, unit, offsets in plans for offset in offsets])
    return {
        d.name: TensorSample(d.dtype, d.shape, b"".join(view[o : o + unit] for o in offsets))
        for d, unit, offsets in plans
    }


def _prefetch(view: mmap.mmap, spans: Sequence[tuple[int, int]]) -> None:
    """Tell the kernel up front which pages will be read.

    Faulting the pages in one by one costs a synchronous disk read each (about 13 s for a
    cold 7B checkpoint here); announced together, the reads overlap (about 0.3 s).
    """
    if not hasattr(mmap, "MADV_WILLNEED"):
        return
    page = mmap.PAGESIZE
    for offset, unit in sorted(set(spans)):
        start = offset - offset % page
        view.madvise(mmap.MADV_WILLNEED, start, offset + unit - start)


# ---------------------------------------------------------------------------------------------
# Hugging Face cache


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache, resolved from the environment now (not at import time):
    HF_HUB_CACHE, HUGGINGFACE_HUB_CACHE, HF_HOME/hub, XDG_CACHE_HOME/huggingface/hub,
    ~/.cache/huggingface/hub, as huggingface_hub does."""
    explicit = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if explicit:
        return Path(os.path.expandvars(os.path.expanduser(explicit)))
    home = os.environ.get("HF_HOME")
    if not home:
        cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
        home = os.path.join(cache, "huggingface")
    return Path(os.path.expandvars(os.path.expanduser(home))) / "hub"


def cached_snapshot(
    repo_id: str, revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> CachedSnapshot:
    """Find ``repo_id`` at ``revision`` (commit sha or unique prefix of 7+ hex digits, branch,
    tag; None = "main") in the local cache. Never touches the network."""
    _check_repo_id(repo_id)
    root = Path(cache_dir) if cache_dir is not None else hub_cache_dir()
    repo_dir = root / ("models--" + repo_id.replace("/", "--"))
    if not repo_dir.is_dir():
        raise FingerprintError(f"{repo_id} is not in the Hugging Face cache at {root}")
    wanted = revision or "main"
    commit = _resolve_revision(repo_dir, wanted, repo_id)
    snapshot = repo_dir / "snapshots" / commit
    if not snapshot.is_dir():
        raise FingerprintError(
            f"{repo_id}@{wanted} points to commit {commit}, whose snapshot is not in the cache"
        )
    return CachedSnapshot(repo_id, commit, snapshot)


def fingerprint_hub_cache(
    repo_id: str, revision: str | None = None, cache_dir: str | os.PathLike[str] | None = None
) -> Fingerprint:
    """Fingerprint a model snapshot from the local Hugging Face cache (see ``cached_snapshot``)."""
    return fingerprint_directory(cached_snapshot(repo_id, revision, cache_dir).path)


def _check_repo_id(repo_id: str) -> None:
    # The rules huggingface_hub's validate_repo_id applies; they also keep the id from
    # naming anything outside the cache directory.
    if (
        not _REPO_ID.fullmatch(repo_id)
        or "--" in repo_id
        or ".." in repo_id
        or repo_id.endswith(".git")
    ):
        raise FingerprintError(f"{repo_id!r} is not a Hugging Face repo id (like org/name)")


def _resolve_revision(repo_dir: Path, revision: str, repo_id: str) -> str:
    parts = revision.split("/")
    if "\\" in revision or any(part in ("", ".", "..") for part in parts):
        raise FingerprintError(f"{revision!r} is not a revision name")
    ref = repo_dir / "refs" / revision
    if ref.is_file():
        commit = ref.read_text(encoding="utf-8").strip()
        if not _COMMIT.fullmatch(commit):
            raise FingerprintError(f"{ref} does not hold a commit sha")
        return commit
    snapshots = repo_dir / "snapshots"
    commits = sorted(p.name for p in snapshots.iterdir()) if snapshots.is_dir() else []
    if len(revision) >= 7 and _HEX.fullmatch(revision):
        matches = [c for c in commits if c.startswith(revision)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise FingerprintError(f"commit prefix {revision} of {repo_id} is ambiguous")
    refs_dir = repo_dir / "refs"
    found = refs_dir.rglob("*") if refs_dir.is_dir() else iter(())
    refs = sorted(p.relative_to(refs_dir).as_posix() for p in found if p.is_file())
    raise FingerprintError(
        f"revision {revision} of {repo_id} is not in the local cache "
        f"(cached refs: {', '.join(refs) or 'none'}; snapshots: "
        f"{', '.join(c[:12] for c in commits) or 'none'})"
    )


def fingerprint_path_or_hub(
    text: str, cache_dir: str | os.PathLike[str] | None = None
) -> Fingerprint:
    """A directory or ``.safetensors`` file if ``text`` names an existing path, else a Hub id
    with an optional ``@revision`` looked up in the local cache."""
    path = Path(text).expanduser()
    if path.is_dir():
        return fingerprint_directory(path)
    if path.is_file():
        return fingerprint_files([path])
    if text.startswith((".", "/", "~")) or os.path.isabs(text):
        raise FingerprintError(f"{text}: no such file or directory")
    repo_id, _, revision = text.partition("@")
    return fingerprint_hub_cache(repo_id, revision or None, cache_dir)


# ---------------------------------------------------------------------------------------------
# Live modules

# PEFT tuner parameter prefixes, for adapter weights that sit outside a tuner layer.
_ADAPTER_PREFIXES = ("lora_", "ia3_", "hada_", "lokr_", "vera_", "oft_", "boft_", "adaption_")
# Children a wrapper keeps the original module under; its other children are adapter state.
_KEPT_CHILDREN = ("base_layer", "original_module")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "base_model.model.")


def fingerprint_module(module: torch.nn.Module) -> Fingerprint:
    """Fingerprint a live module's base weights from its ``state_dict()``.

    PeftModel, DDP and torch.compile wrappers are unwrapped; names are normalised as
    save_pretrained would write them (adapter parameters skipped, ``.base_layer`` /
    ``.original_module`` dropped) and tied weights are kept once, under their first name.
    Only the sampled elements are copied.
    """
    import torch

    state = _unwrap(module).state_dict()
    names = _normalised_names(list(state))
    dtypes = _torch_dtypes(torch)
    samples: dict[str, TensorSample] = {}
    seen: set[tuple[Any, ...]] = set()
    for key, tensor in state.items():
        name = names.get(key)
        if name is None:
            continue
        _check_readable(torch, dtypes, tensor, key)
        identity = _storage_identity(tensor)
        if identity is not None and identity in seen:
            continue  # a tied weight: save_pretrained writes it once, under its first name
        if identity is not None:
            seen.add(identity)
        if name in samples:
            raise FingerprintError(f"two parameters both map to the name {name}")
        samples[name] = _tensor_sample(torch, dtypes, name, tensor)
    return _assemble(samples)


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    import torch

    while True:
        get_base = getattr(module, "get_base_model", None)
        inner: object = None
        if callable(get_base) and hasattr(module, "peft_config"):
            inner = get_base()  # PeftModel; prompt-learning models hold no injected layers
        elif hasattr(module, "targeted_module_names") and hasattr(module, "peft_config"):
            inner = getattr(module, "model", None)  # a PEFT tuner (LoraModel, ...) itself
        elif isinstance(getattr(module, "_orig_mod", None), torch.nn.Module):
            inner = module._orig_mod  # torch.compile
        elif type(module).__name__ in ("DistributedDataParallel", "DataParallel"):
            inner = getattr(module, "module", None)
        if not isinstance(inner, torch.nn.Module):
            return module
        module = inner


def _normalised_names(keys: Sequence[str]) -> dict[str, str]:
    """Map state_dict keys to base-model names; adapter keys are left out."""
    stripped = {key: _strip_wrappers(key) for key in keys}
    # A module holding a base_layer/original_module child is a wrapper: only that child is base.
    wrappers: dict[str, str] = {}
    for name in stripped.values():
        parts = name.split(".")
        for i, part in enumerate(parts[:-1]):  # the last part names a tensor, not a module
            if part in _KEPT_CHILDREN:
                wrappers[".".join(parts[:i])] = part
    out: dict[str, str] = {}
    for key, name in stripped.items():
        normal = _base_name(name.split("."), wrappers)
        if normal is not None:
            out[key] = normal
    return out


def _strip_wrappers(key: str) -> str:
    while True:
        prefix = next((p for p in _WRAPPER_PREFIXES if key.startswith(p)), None)
        if prefix is None:
            return key
        key = key[len(prefix) :]


def _base_name(parts: list[str], wrappers: Mapping[str, str]) -> str | None:
    kept: list[str] = []
    for i, part in enumerate(parts):
        if part == "modules_to_save" or part.startswith(_ADAPTER_PREFIXES):
            return None
        child = wrappers.get(".".join(parts[:i]))
        if child is not None:
            if part != child:
                return None  # adapter state inside a wrapper
            continue
        kept.append(part)
    return ".".join(kept)


def _torch_dtypes(torch: Any) -> dict[Any, str]:
    names = {
        "float64": "F64",
        "float32": "F32",
        "float16": "F16",
        "bfloat16": "BF16",
        "int64": "I64",
        "int32": "I32",
        "int16": "I16",
        "int8": "I8",
        "uint8": "U8",
        "uint16": "U16",
        "uint32": "U32",
        "uint64": "U64",
        "bool": "BOOL",
        "complex64": "C64",
        "float8_e4m3fn": "F8_E4M3",
        "float8_e5m2": "F8_E5M2",
        "float8_e4m3fnuz": "F8_E4M3FNUZ",
        "float8_e5m2fnuz": "F8_E5M2FNUZ",
        "float8_e8m0fnu": "F8_E8M0",
    }
    return {getattr(torch, attr): st for attr, st in names.items() if hasattr(torch, attr)}


def _check_readable(torch: Any, dtypes: Mapping[Any, str], tensor: torch.Tensor, key: str) -> None:
    if tensor.device.type == "meta":
        raise FingerprintError(f"{key} is on the meta device: load the weights first")
    if tensor.dtype not in dtypes or tensor.layout != torch.strided:
        raise FingerprintError(f"{key}: cannot fingerprint a {tensor.dtype} {tensor.layout} tensor")


def _storage_identity(tensor: torch.Tensor) -> tuple[Any, ...] | None:
    if tensor.numel() == 0:
        return None  # empty tensors may all report address 0; never treat them as tied
    return (
        tensor.device,
        tensor.data_ptr(),
        tensor.dtype,
        tuple(tensor.shape),
        tuple(tensor.stride()),
    )


def _tensor_sample(
    torch: Any, dtypes: Mapping[Any, str], name: str, tensor: torch.Tensor
) -> TensorSample:
    dtype = dtypes[tensor.dtype]
    shape = tuple(int(d) for d in tensor.shape)
    indices = sample_indices(name, tensor.numel())
    if not indices:
        return TensorSample(dtype, shape, b"")
    if tensor.is_contiguous():
        index = torch.tensor(indices, dtype=torch.int64, device=tensor.device)
        picked = tensor.detach().reshape(-1)[index]  # reshape is a view: only K values copied
    else:
        coords = [_unravel(i, shape) for i in indices]
        columns = tuple(torch.tensor(c, device=tensor.device) for c in zip(*coords, strict=True))
        picked = tensor.detach()[columns]
    return TensorSample(dtype, shape, _little_endian_bytes(torch, picked))


def _unravel(index: int, shape: Sequence[int]) -> list[int]:
    """C-order coordinates of flat ``index``."""
    coords: list[int] = []
    for dim in reversed(shape):
        index, coord = divmod(index, dim)
        coords.append(coord)
    return coords[::-1]


def _little_endian_bytes(torch: Any, values: torch.Tensor) -> bytes:
    # Reinterpret as same-width integers: numpy has no bfloat16 or float8.
    as_int = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    array = values.cpu().contiguous().view(as_int[values.element_size()]).numpy()
    if sys.byteorder == "big":
        array = array.byteswap()
    return bytes(array.tobytes())


# ---------------------------------------------------------------------------------------------
# Decoding samples

_STRUCT_FLOAT = {"F64": "d", "F32": "f", "F16": "e"}
_STRUCT_INT = {"I8": "b", "U8": "B", "I16": "h", "U16": "H", "I32": "i", "U32": "I"}
_STRUCT_INT.update({"I64": "q", "U64": "Q"})


def _e4m3(byte: int) -> float:
    sign = -1.0 if byte & 0x80 else 1.0
    exponent, mantissa = (byte >> 3) & 0xF, byte & 0x7
    if exponent == 0xF and mantissa == 0x7:
        return math.nan  # e4m3fn has no infinities; this is its only NaN pattern
    if exponent == 0:
        return sign * mantissa / 8 * 2.0**-6
    return sign * (1 + mantissa / 8) * 2.0 ** (exponent - 7)


_E4M3 = tuple(_e4m3(b) for b in range(256))


def _decode(dtype: str, data: bytes) -> tuple[str, list[float] | list[int]] | None:
    """("float" | "int", values) for dtypes with a value comparison, else None."""
    if dtype in _STRUCT_FLOAT or dtype in _STRUCT_INT:
        code = _STRUCT_FLOAT.get(dtype) or _STRUCT_INT[dtype]
        values = list(struct.unpack(f"<{len(data) // struct.calcsize(code)}{code}", data))
        return ("float" if dtype in _STRUCT_FLOAT else "int"), values
    if dtype == "BF16":
        # bf16 is the upper half of an f32.
        halves = struct.unpack(f"<{len(data) // 2}H", data)
        widened = struct.pack(f"<{len(halves)}I", *(h << 16 for h in halves))
        return "float", list(struct.unpack(f"<{len(halves)}f", widened))
    if dtype == "F8_E5M2":
        # e5m2 is the upper byte of an f16.
        widened = struct.pack(f"<{len(data)}H", *(b << 8 for b in data))
        return "float", list(struct.unpack(f"<{len(data)}e", widened))
    if dtype == "F8_E4M3":
        return "float", [_E4M3[b] for b in data]
    return None


# Per float dtype: (relative, absolute) tolerance = one unit in the last place, and the spacing
# of its subnormals. One ulp, not half, so truncating casts are recognised as well as rounding.
_TOLERANCE: Mapping[str, tuple[float, float]] = MappingProxyType(
    {
        "F64": (2.0**-52, 2.0**-1074),
        "F32": (2.0**-23, 2.0**-149),
        "F16": (2.0**-10, 2.0**-24),
        "BF16": (2.0**-7, 2.0**-133),
        "F8_E4M3": (2.0**-3, 2.0**-9),
        "F8_E5M2": (2.0**-2, 2.0**-16),
    }
)


def _close(x: float, y: float, rtol: float, atol: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    if math.isinf(x) or math.isinf(y):
        return x == y
    return abs(x - y) <= rtol * max(abs(x), abs(y)) + atol


def _differing(a: TensorSample, b: TensorSample) -> tuple[int, int]:
    """(values compared, values that differ) between two samples of one tensor."""
    if a.dtype == b.dtype:
        # Same dtype: only the identical bytes count as equal; a cast cannot explain a change.
        unit = _units(a.dtype, a.shape)[1]
        chunks = range(0, max(len(a.sample), len(b.sample)), unit)
        differ = sum(a.sample[i : i + unit] != b.sample[i : i + unit] for i in chunks)
        return len(chunks), differ
    da, db = _decode(a.dtype, a.sample), _decode(b.dtype, b.sample)
    if da is None or db is None or da[0] != db[0] or len(da[1]) != len(db[1]):
        # No value comparison between these dtypes (say BOOL and F16): every value differs.
        count = min(a.numel, SAMPLES_PER_TENSOR)
        return count, count
    if da[0] == "int":
        return len(da[1]), sum(x != y for x, y in zip(da[1], db[1], strict=True))
    # The coarser dtype of the pair sets the tolerance; each bound from whichever is coarser.
    (rtol_a, atol_a), (rtol_b, atol_b) = _TOLERANCE[a.dtype], _TOLERANCE[b.dtype]
    rtol, atol = max(rtol_a, rtol_b), max(atol_a, atol_b)
    return len(da[1]), sum(not _close(x, y, rtol, atol) for x, y in zip(da[1], db[1], strict=True))


# ---------------------------------------------------------------------------------------------
# Comparison


def compare(
    a: Fingerprint, b: Fingerprint, names: Iterable[str] | None = None
) -> FingerprintComparison:
    """Compare fingerprint ``a`` (expected) with ``b`` (found).

    "identical": equal content digests. "structure-mismatch": names or shapes differ.
    Otherwise the samples of ``names`` (module paths select the tensors below them; default:
    every tensor sampled in both) decide: "cast" when every value is equal within the
    tolerance of the lower-precision dtype of its pair and some dtype differs, else "different".
    """
    if a.algorithm != b.algorithm:
        raise FingerprintError(f"cannot compare {a.algorithm} with {b.algorithm} fingerprints")
    if a.content == b.content:
        return FingerprintComparison("identical", f"identical weights (content {a.content})")
    if a.structure != b.structure:
        return _structure_mismatch(a, b)
    selected = _compared_names(a, b, names)
    shares: dict[str, float] = {}
    total = differ = 0
    for name in selected:
        count, bad = _differing(a.tensors[name], b.tensors[name])
        total, differ = total + count, differ + bad
        if bad:
            shares[name] = bad / count
    pairs = {(a.tensors[n].dtype, b.tensors[n].dtype) for n in selected}
    changes = tuple(sorted((x, y) for x, y in pairs if x != y))
    return _samples_verdict(selected, total, differ, shares, changes)


def _samples_verdict(
    selected: Sequence[str],
    total: int,
    differ: int,
    shares: Mapping[str, float],
    changes: tuple[tuple[str, str], ...],
) -> FingerprintComparison:
    share = differ / total if total else 0.0
    worst = tuple(name for name, _ in heapq.nsmallest(5, shares.items(), key=_by_share))
    verdict: Verdict = "different"
    if differ == 0 and changes:
        verdict = "cast"
        casts = ", ".join(f"{x} -> {y}" for x, y in changes)
        summary = f"same weights up to a dtype cast ({casts}) over {len(selected)} tensors"
    elif differ == 0:
        # Only when some tensors were left out (names, subset): those differ.
        summary = (
            f"the {len(selected)} compared tensors are identical, but the content digests "
            "differ: other tensors hold other weights"
        )
    else:
        summary = (
            f"different weights: {share:.1%} of {total} sampled values differ in "
            f"{len(shares)} of {len(selected)} tensors (most: {', '.join(worst[:3])})"
        )
    return FingerprintComparison(
        verdict,
        summary,
        compared=tuple(selected),
        sampled_values=total,
        differing_values=differ,
        differing_share=share,
        most_different=worst,
        tensor_shares=MappingProxyType(dict(shares)),
        dtype_changes=changes,
    )


def _by_share(item: tuple[str, float]) -> tuple[float, bytes]:
    return -item[1], _utf8(item[0])


def _compared_names(a: Fingerprint, b: Fingerprint, names: Iterable[str] | None) -> list[str]:
    if names is None:
        common = [n for n in a.tensors if n in b.tensors]
        if not common:
            raise FingerprintError("the two fingerprints keep samples of no common tensor")
        return common
    wanted = list(names)
    in_a = _select_names(a.tensors, wanted, "the first fingerprint")
    in_b = _select_names(b.tensors, wanted, "the second fingerprint")
    lacking = sorted(set(in_a) ^ set(in_b), key=_utf8)
    if lacking:
        raise FingerprintError(
            f"only one fingerprint keeps samples of {_join(lacking)}; compare with a complete one"
        )
    return in_a


def _select_names(
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
        raise FingerprintError(f"{label} has no samples for {_join(sorted(unknown))}")
    return sorted(keep, key=_utf8)


def _structure_mismatch(a: Fingerprint, b: Fingerprint) -> FingerprintComparison:
    # A side keeping only some samples cannot say which names it lacks.
    missing = [n for n in a.tensors if n not in b.tensors] if b.is_complete else []
    extra = [n for n in b.tensors if n not in a.tensors] if a.is_complete else []
    mismatched = [
        n for n in a.tensors if n in b.tensors and a.tensors[n].shape != b.tensors[n].shape
    ]
    parts = [
        f"{label} ({_join(found, 3)})"
        for label, found in (
            (f"{len(missing)} missing", missing),
            (f"{len(extra)} extra", extra),
            (f"{len(mismatched)} with another shape", mismatched),
        )
        if found
    ]
    detail = "; ".join(parts) or (
        f"{a.tensor_count} vs {b.tensor_count} tensors, differing outside the kept samples"
    )
    return FingerprintComparison(
        "structure-mismatch",
        f"different tensor names or shapes: {detail}",
        missing=tuple(missing),
        extra=tuple(extra),
        mismatched=tuple(mismatched),
    )


# ---------------------------------------------------------------------------------------------
# Parsing stored fingerprints


def _parse_fingerprint(data: Mapping[str, Any]) -> Fingerprint:
    if not isinstance(data, Mapping):
        raise FingerprintError("a stored fingerprint must be a JSON object")
    problems: list[str] = []
    algorithm = data.get("algorithm")
    if algorithm != ALGORITHM:
        raise FingerprintError(
            f"unknown fingerprint algorithm {algorithm!r}; this version reads {ALGORITHM}"
        )
    for key in ("structure", "content"):
        if not isinstance(data.get(key), str) or not _DIGEST.fullmatch(data[key]):
            problems.append(f"{key} is not sha256:<64 hex digits>")
    for key in ("tensor_count", "total_params"):
        if not _is_count(data.get(key)):
            problems.append(f"{key} is not a non-negative integer")
    raw = data.get("tensors")
    if not isinstance(raw, Mapping):
        problems.append("tensors is not an object")
        raw = {}
    tensors = {}
    for name, entry in raw.items():
        sample = _parse_sample(str(name), entry, problems)
        if sample is not None:
            tensors[str(name)] = sample
    if problems:
        raise FingerprintError("invalid stored fingerprint: " + _join(problems))
    fingerprint = Fingerprint(
        ALGORITHM,
        data["structure"],
        data["content"],
        data["tensor_count"],
        data["total_params"],
        tensors,
    )
    _check_consistent(fingerprint)
    return fingerprint


def _parse_sample(name: str, entry: object, problems: list[str]) -> TensorSample | None:
    label = f"tensor {name!r}"
    if (problem := _name_problem(name)) is not None:
        problems.append(problem)
        return None
    if not isinstance(entry, Mapping):
        problems.append(f"{label} is not an object")
        return None
    dtype, shape, sample = entry.get("dtype"), entry.get("shape"), entry.get("sample")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        problems.append(f"{label}: unknown dtype {dtype!r}")
        return None
    if not isinstance(shape, list) or not all(_is_count(d) for d in shape):
        problems.append(f"{label}: shape is not a list of non-negative integers")
        return None
    try:
        raw = base64.b64decode(sample if isinstance(sample, str) else "!", validate=True)
    except (binascii.Error, ValueError):
        problems.append(f"{label}: sample is not base64")
        return None
    count, unit = _units(dtype, shape)
    if len(raw) != min(count, SAMPLES_PER_TENSOR) * unit:
        problems.append(
            f"{label}: sample has {len(raw)} bytes, {dtype} {shape} needs "
            f"{min(count, SAMPLES_PER_TENSOR) * unit}"
        )
        return None
    return TensorSample(dtype, tuple(shape), raw)


def _check_consistent(fingerprint: Fingerprint) -> None:
    if len(fingerprint.tensors) > fingerprint.tensor_count:
        raise FingerprintError(
            f"invalid stored fingerprint: {len(fingerprint.tensors)} samples for "
            f"{fingerprint.tensor_count} tensors"
        )
    if not fingerprint.is_complete:
        return
    recomputed = _assemble(fingerprint.tensors)
    if (recomputed.structure, recomputed.content, recomputed.total_params) != (
        fingerprint.structure,
        fingerprint.content,
        fingerprint.total_params,
    ):
        raise FingerprintError(
            "invalid stored fingerprint: its samples do not recompute its digests"
        )
