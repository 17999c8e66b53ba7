"""Safetensors checkpoints read and written one tensor at a time.

Reading: a checkpoint directory is ``model.safetensors.index.json`` plus its shards, else
``model.safetensors``, else every top-level ``*.safetensors``. Headers are parsed and
checked by ``registry.formats``; a tensor's bytes are read with plain positioned reads into
a fresh tensor, never through a memory map, so the process holds one tensor at a time (a
map would count every page it touched toward the process's resident memory).

Writing: ``ShardWriter`` writes the header first (names, dtypes and shapes are known before
any value is) and then each tensor's bytes in order, so a shard of any size is written with
one tensor in memory.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import torch

from registry.errors import FormatError, UnsafeFormatError
from registry.formats import read_safetensors_header

INDEX_NAME = "model.safetensors.index.json"
SINGLE_NAME = "model.safetensors"
_LENGTH = struct.Struct("<Q")
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")

TORCH_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "U16": torch.uint16,
    "U32": torch.uint32,
    "U64": torch.uint64,
    "BOOL": torch.bool,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E5M2": torch.float8_e5m2,
}
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")


@dataclass(frozen=True)
class StoredTensor:
    name: str
    dtype: str  # safetensors dtype, e.g. "BF16"
    shape: tuple[int, ...]
    start: int  # absolute byte offset of the data in its file
    size: int  # bytes


@dataclass(frozen=True)
class Shard:
    path: Path
    tensors: tuple[StoredTensor, ...]  # in file order
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def data_bytes(self) -> int:
        return sum(t.size for t in self.tensors)


@dataclass(frozen=True)
class Checkpoint:
    directory: Path
    shards: tuple[Shard, ...]
    indexed: bool  # read through model.safetensors.index.json

    def tensors(self) -> dict[str, StoredTensor]:
        return {t.name: t for shard in self.shards for t in shard.tensors}

    @property
    def data_bytes(self) -> int:
        return sum(s.data_bytes for s in self.shards)


def torch_dtype(dtype: str) -> torch.dtype:
    try:
        return TORCH_DTYPES[dtype]
    except KeyError:
        raise FormatError(f"tensors of dtype {dtype} are not supported here") from None


def safetensors_dtype(dtype: torch.dtype) -> str:
    for name, found in TORCH_DTYPES.items():
        if found == dtype:
            return name
    raise FormatError(f"torch dtype {dtype} has no safetensors name")


def _shard_files(directory: Path) -> tuple[list[Path], dict[str, str] | None]:
    index = directory / INDEX_NAME
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise FormatError(f"{index}: cannot read its weight_map: {exc}") from exc
        if not isinstance(weight_map, dict) or not weight_map:
            raise FormatError(f"{index}: weight_map is not a non-empty object")
        names = sorted({str(v) for v in weight_map.values()})
        bad = [n for n in names if "/" in n or "\\" in n or n in ("", ".", "..")]
        if bad:
            raise FormatError(f"{index}: shard names must be files beside it, got {bad[:3]}")
        return [directory / n for n in names], {str(k): str(v) for k, v in weight_map.items()}
    if (directory / SINGLE_NAME).is_file():
        return [directory / SINGLE_NAME], None
    found = sorted(p for p in directory.glob("*.safetensors") if p.is_file())
    if found:
        return found, None
    pickles = sorted(p.name for p in directory.iterdir() if p.suffix in _PICKLE_SUFFIXES)
    if pickles:
        raise UnsafeFormatError(
            f"{directory} has only pickle weights ({', '.join(pickles[:3])}), which are never "
            "loaded (unpickling can run code); save the model with safetensors first"
        )
    raise FormatError(f"{directory} holds no safetensors weights")


def _read_shard(path: Path) -> Shard:
    if not path.is_file():
        raise FormatError(f"shard {path.name} listed in the index is missing")
    declared, metadata = read_safetensors_header(path)
    with path.open("rb") as handle:
        (length,) = _LENGTH.unpack(handle.read(_LENGTH.size))
    base = _LENGTH.size + length
    tensors = sorted(
        (
            StoredTensor(
                info.name,
                info.dtype,
                info.shape,
                base + info.offsets[0],
                info.offsets[1] - info.offsets[0],
            )
            for info in declared.values()
        ),
        key=lambda t: (t.start, t.name),
    )
    return Shard(path, tuple(tensors), dict(metadata))


def open_checkpoint(directory: Path) -> Checkpoint:
    """The shards of the checkpoint in ``directory``, every header checked."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FormatError(f"{directory} is not a model directory")
    files, weight_map = _shard_files(directory)
    shards = tuple(_read_shard(p) for p in files)
    seen: dict[str, str] = {}
    problems = []
    for shard in shards:
        for tensor in shard.tensors:
            if tensor.name in seen:
                problems.append(f"{tensor.name} is in {seen[tensor.name]} and {shard.path.name}")
            seen[tensor.name] = shard.path.name
    if weight_map is not None:
        problems.extend(
            f"{name} is listed in {shard} but not stored there"
            for name, shard in weight_map.items()
            if seen.get(name) != shard
        )
    if problems:
        raise FormatError(f"{directory}: " + "; ".join(problems[:5]))
    return Checkpoint(directory, shards, weight_map is not None)


def read_tensor(handle: io.BufferedReader, info: StoredTensor) -> torch.Tensor:
    """One tensor's values, read from the open shard ``handle``."""
    tensor = torch.empty(info.shape, dtype=torch_dtype(info.dtype))
    if info.size == 0:
        return tensor
    view = tensor.reshape(-1).view(torch.uint8).numpy().data.cast("B")
    handle.seek(info.start)
    done = 0
    while done < info.size:
        count = handle.readinto(view[done:])
        if not count:
            raise FormatError(f"{info.name}: the file ends inside the tensor's data")
        done += count
    return tensor


class ShardWriter:
    """Writes one safetensors file tensor by tensor, in the order declared up front."""

    def __init__(
        self,
        path: Path,
        layout: Sequence[tuple[str, str, tuple[int, ...]]],
        metadata: dict[str, str] | None = None,
    ) -> None:
        header: dict[str, object] = {"__metadata__": dict(metadata or {"format": "pt"})}
        offset = 0
        self._expected: list[tuple[str, str, tuple[int, ...], int]] = []
        for name, dtype, shape in layout:
            size = _byte_size(dtype, shape)
            header[name] = {
                "dtype": dtype,
                "shape": list(shape),
                "data_offsets": [offset, offset + size],
            }
            self._expected.append((name, dtype, tuple(shape), size))
            offset += size
        raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
        raw += b" " * (-len(raw) % 8)  # data starts 8-byte aligned, as safetensors writes it
        self.path = path
        self.bytes_written = 0
        self._handle: BinaryIO | None = path.open("wb")
        self._handle.write(_LENGTH.pack(len(raw)))
        self._handle.write(raw)
        self._next = 0

    def write(self, name: str, tensor: torch.Tensor) -> None:
        assert self._handle is not None
        expected_name, dtype, shape, size = self._expected[self._next]
        if name != expected_name or safetensors_dtype(tensor.dtype) != dtype:
            raise FormatError(f"{self.path.name}: expected {expected_name} ({dtype}), got {name}")
        if tuple(tensor.shape) != shape:
            raise FormatError(f"{name}: shape {list(tensor.shape)}, the header says {list(shape)}")
        if size:
            data = tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy()
            self._handle.write(data.data)
        self.bytes_written += size
        self._next += 1

    def close(self) -> None:
        if self._handle is None:
            return
        self._handle.close()
        self._handle = None
        if self._next != len(self._expected):
            missing = self._expected[self._next][0]
            raise FormatError(f"{self.path.name}: closed before {missing} was written")


def _byte_size(dtype: str, shape: Sequence[int]) -> int:
    count = 1
    for dim in shape:
        count *= int(dim)
    return count * torch_dtype(dtype).itemsize


def write_index(directory: Path, weight_map: dict[str, str], total_size: int) -> None:
    document = {
        "metadata": {"total_size": total_size},
        "weight_map": dict(sorted(weight_map.items())),
    }
    (directory / INDEX_NAME).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
