"""Exhaustive mode of the fingerprint: the sha256 of each tensor's whole raw bytes.

Sampling sees 64 values per tensor, so a change confined to a few values passes it; a
full-content digest sees every byte. Files are hashed through a read-only mmap, tensor by
tensor, and the digests of a file are cached (``digest_cache_dir``), keyed by the file's real
path, size, modification and change times and inode, so a base is read in full once. Live
tensors are hashed from their little-endian bytes on the CPU, one tensor at a time.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.formats.model import TensorInfo

if TYPE_CHECKING:
    import torch

_CACHE_FORMAT = 1
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_CHUNK = 64 << 20  # hash in 64 MiB slices, so memory stays bounded by the page cache


def digest_cache_dir() -> Path:
    """Where file digests are cached: ``ADAPTERS_DIGEST_CACHE``, else
    ``$XDG_CACHE_HOME/adapter-registry/tensor-digests`` (default ``~/.cache``)."""
    explicit = os.environ.get("ADAPTERS_DIGEST_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return Path(cache).expanduser() / "adapter-registry" / "tensor-digests"


def is_digest(value: object) -> bool:
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def file_tensor_digests(
    path: Path, view: mmap.mmap, data_start: int, tensors: Iterable[TensorInfo]
) -> dict[str, str]:
    """The full-content digest of each tensor of one open safetensors file, from the cache
    when the file is unchanged since it was hashed."""
    declared = list(tensors)
    key, identity = _cache_key(path)
    cached = _read_cache(key, identity)
    if cached is not None and set(cached) == {t.name for t in declared}:
        return cached
    digests = {t.name: _hash_span(view, data_start + t.offsets[0], data_start + t.offsets[1])
               for t in declared}  # fmt: skip
    _write_cache(key, identity, digests)
    return digests


def _hash_span(view: mmap.mmap, begin: int, end: int) -> str:
    hasher = hashlib.sha256()
    with memoryview(view) as whole:
        for start in range(begin, end, _CHUNK):
            hasher.update(whole[start : min(end, start + _CHUNK)])
    if hasattr(mmap, "MADV_DONTNEED") and end > begin:
        # Done with these pages: let the kernel drop them rather than other processes' pages.
        page = mmap.PAGESIZE
        start = begin - begin % page
        view.madvise(mmap.MADV_DONTNEED, start, end - start)
    return "sha256:" + hasher.hexdigest()


def _cache_key(path: Path) -> tuple[str, dict[str, Any]]:
    real = os.path.realpath(path)
    stat = os.stat(real)
    identity = {
        "path": real,
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "ctime_ns": stat.st_ctime_ns,
        "inode": stat.st_ino,
        "device": stat.st_dev,
    }
    text = json.dumps(identity, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), identity


def _read_cache(key: str, identity: Mapping[str, Any]) -> dict[str, str] | None:
    path = digest_cache_dir() / f"{key}.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None  # absent or unreadable: hash again and rewrite it
    if not isinstance(document, dict) or document.get("format") != _CACHE_FORMAT:
        return None
    digests = document.get("digests")
    if document.get("file") != dict(identity) or not isinstance(digests, dict):
        return None
    if not all(isinstance(k, str) and is_digest(v) for k, v in digests.items()):
        return None
    return {str(k): str(v) for k, v in digests.items()}


def _write_cache(key: str, identity: Mapping[str, Any], digests: Mapping[str, str]) -> None:
    directory = digest_cache_dir()
    document = {"format": _CACHE_FORMAT, "file": dict(identity), "digests": dict(digests)}
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".json")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(document, out)
        os.replace(temp, directory / f"{key}.json")
    except OSError:
        pass  # a cache that cannot be written only costs a re-hash next time


def module_tensor_digests(
    tensors: Mapping[str, torch.Tensor], names: Iterable[str] | None
) -> dict[str, str]:
    """The full-content digest of each named live tensor (all when ``names`` is None)."""
    wanted = set(tensors) if names is None else set(names)
    return {name: tensor_digest(t) for name, t in tensors.items() if name in wanted}


def tensor_digest(tensor: torch.Tensor) -> str:
    """sha256 of a tensor's little-endian C-order bytes, as a safetensors file stores them."""
    import torch

    as_int: Mapping[int, Callable[..., Any]] = {
        1: lambda t: t.view(torch.uint8),
        2: lambda t: t.view(torch.int16),
        4: lambda t: t.view(torch.int32),
        8: lambda t: t.view(torch.int64),
    }
    flat = tensor.detach().cpu().contiguous().reshape(-1)
    if tensor.dtype == torch.bool:
        flat = flat.view(torch.uint8)
    array = as_int[flat.element_size()](flat).numpy()
    if sys.byteorder == "big":
        array = array.byteswap()
    return "sha256:" + hashlib.sha256(memoryview(array).cast("B")).hexdigest()
