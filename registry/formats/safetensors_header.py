"""Reading a safetensors header without torch, treating the file as hostile input.

Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data section.
The JSON maps tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
relative to the data section) plus an optional ``__metadata__`` of strings. Every declaration is
checked against the file: a lying length, offsets outside the data, a size that does not match
the shape, two tensors sharing bytes, or data bytes that belong to no tensor (which the
safetensors library refuses to load) are all reported, each one.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from registry.errors import ValidationError
from registry.formats.json_limits import (
    JsonLimitError,
    bounded_int,
    brief,
    finite_float,
    json_problems,
    too_deep,
)
from registry.formats.model import TensorInfo
from registry.formats.text import show, show_shape

MAX_HEADER_BYTES = 100 * 1024 * 1024
# Offsets, dimensions and byte sizes are u64 in the format.
_LIMIT = 2**64
_ANY = 10**20  # above every integer json_limits lets through
_LENGTH = struct.Struct("<Q")

# Bits per element of every dtype the safetensors format defines.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "F8_E8M0": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "I64": 64,
    "U64": 64,
    "F64": 64,
    "C64": 64,
}


@dataclass
class HeaderReport:
    """What a header declares, and every problem found with it."""

    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class _DuplicateKeyError(ValueError):
    pass


def read_safetensors_header(path: Path) -> tuple[dict[str, TensorInfo], dict[str, str]]:
    """Tensors and ``__metadata__`` declared by the safetensors file at ``path``.

    Reads the header only. Raises ``ValidationError`` listing every problem found.
    """
    report = inspect_safetensors_header(path)
    if report.problems:
        raise ValidationError(str(path), report.problems)
    return report.tensors, report.metadata


def inspect_safetensors_header(path: Path) -> HeaderReport:
    """Like ``read_safetensors_header`` but returns problems instead of raising."""
    report = HeaderReport()
    try:
        with Path(path).open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            header = _read_header_bytes(handle, size, report)
    except OSError as exc:
        report.problems.append(f"cannot read: {exc.strerror or exc}")
        return report
    if header is None:
        return report
    document = _parse_json(header, report)
    if document is None:
        return report
    data_size = size - _LENGTH.size - len(header)
    _check_entries(document, data_size, report)
    return report


def _read_header_bytes(handle: Any, size: int, report: HeaderReport) -> bytes | None:
    if size < _LENGTH.size:
        report.problems.append(
            f"file is {size} bytes, too short for a safetensors file (8-byte length + JSON header)"
        )
        return None
    (length,) = _LENGTH.unpack(handle.read(_LENGTH.size))
    if length > MAX_HEADER_BYTES:
        report.problems.append(
            f"header length {length} bytes exceeds the {MAX_HEADER_BYTES} byte limit; "
            "not a safetensors file?"
        )
        return None
    available = size - _LENGTH.size
    if length > available:
        report.problems.append(
            f"header length {length} bytes is larger than the {available} bytes that follow it"
        )
        return None
    header: bytes = handle.read(length)
    if len(header) != length:
        report.problems.append("file changed while being read")
        return None
    return header


def _parse_json(header: bytes, report: HeaderReport) -> dict[str, Any] | None:
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.problems.append(f"header is not UTF-8 (byte {exc.start})")
        return None
    try:
        document = json.loads(
            text,
            object_pairs_hook=_unique_keys,
            parse_constant=_reject_constant,
            parse_int=bounded_int,
            parse_float=finite_float,
        )
    except _DuplicateKeyError as exc:
        report.problems.append(f"header declares {exc} more than once")
        return None
    except json.JSONDecodeError as exc:
        report.problems.append(f"header is not valid JSON: {exc.msg} at byte {exc.pos}")
        return None
    except JsonLimitError as exc:
        report.problems.append(f"header: {exc}")
        return None
    except RecursionError:
        report.problems.append(f"header is {too_deep()}")
        return None
    except ValueError as exc:
        report.problems.append(f"header is not valid JSON: {exc}")
        return None
    limits = json_problems(document, "header")
    if limits:
        report.problems.extend(limits)
        return None
    if not isinstance(document, dict):
        report.problems.append(
            f"header is JSON {type(document).__name__}, expected an object of tensors"
        )
        return None
    return document


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key would let a second declaration hide the first.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(repr(key))
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _is_count(value: object, limit: int = _LIMIT) -> bool:
    # u64 in the format; json_limits already bounds integers to 20 digits.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < limit


def _check_entries(document: dict[str, Any], data_size: int, report: HeaderReport) -> None:
    spans: list[tuple[int, int, str]] = []
    for name, entry in document.items():
        if name == "__metadata__":
            _check_metadata(entry, report)
            continue
        info = _check_tensor(name, entry, data_size, report)
        if info is None:
            continue
        report.tensors[name] = info
        if info.offsets[1] > info.offsets[0]:
            spans.append((info.offsets[0], info.offsets[1], name))
    _check_overlaps(spans, report)
    if not report.problems:
        _check_coverage(spans, data_size, report)


def _check_metadata(entry: object, report: HeaderReport) -> None:
    if not isinstance(entry, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
    ):
        report.problems.append("__metadata__ must map strings to strings")
        return
    report.metadata.update(entry)


def _check_tensor(
    name: str, entry: object, data_size: int, report: HeaderReport
) -> TensorInfo | None:
    label = f"tensor {show(name)}"
    if not isinstance(entry, dict):
        report.problems.append(f"{label}: declaration is not an object")
        return None
    problems: list[str] = []
    dtype = entry.get("dtype")
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        problems.append(f"{label}: unknown dtype {brief(dtype)}")
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(_is_count(d, _ANY) for d in shape):
        problems.append(f"{label}: shape {brief(shape)} is not a list of non-negative integers")
    elif not all(_is_count(d) for d in shape):
        problems.append(f"{label}: shape {brief(shape)} has a dimension of 2**64 or more")
    offsets = entry.get("data_offsets")
    if not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_count(o) for o in offsets):
        problems.append(f"{label}: data_offsets {brief(offsets)} is not [begin, end]")
    elif offsets[0] > offsets[1]:
        problems.append(f"{label}: data_offsets {offsets} end before they begin")
    elif offsets[1] > data_size:
        problems.append(
            f"{label}: data_offsets {offsets} reach past the {data_size} byte data section"
        )
    if problems:
        report.problems.extend(problems)
        return None
    assert isinstance(dtype, str) and isinstance(shape, list) and isinstance(offsets, list)
    info = TensorInfo(name, dtype, tuple(shape), (offsets[0], offsets[1]))
    bits = info.numel * DTYPE_BITS[dtype]
    span = offsets[1] - offsets[0]
    declared = f"{dtype} {_shape_text(info.shape)}"
    if bits >= 8 * _LIMIT:
        # Said without the number itself: it may have more digits than Python will print.
        report.problems.append(f"{label}: {declared} declares more than 2**64 bytes")
        return None
    if bits % 8:
        report.problems.append(f"{label}: {declared} is not a whole number of bytes")
        return None
    if span != bits // 8:
        report.problems.append(
            f"{label}: data_offsets span {span} bytes but {declared} needs {bits // 8}"
        )
        return None
    return info


def _shape_text(shape: tuple[int, ...]) -> str:
    if len(shape) <= 8:
        return show_shape(shape)
    return f"{show_shape(shape[:8])[:-1]}, ... ({len(shape)} dimensions)]"


def _check_overlaps(spans: list[tuple[int, int, str]], report: HeaderReport) -> None:
    spans.sort()
    furthest: tuple[int, int, str] | None = None
    for span in spans:
        if furthest is not None and span[0] < furthest[1]:
            report.problems.append(
                f"tensors {show(furthest[2])} and {show(span[2])} overlap "
                f"(bytes {span[0]}..{min(span[1], furthest[1])} of the data section)"
            )
        if furthest is None or span[1] > furthest[1]:
            furthest = span


def _check_coverage(
    spans: list[tuple[int, int, str]], data_size: int, report: HeaderReport
) -> None:
    # The safetensors library refuses a data section with bytes outside every tensor, so
    # a file with gaps or trailing bytes could be stored here yet never load.
    position = 0
    for begin, end, _name in sorted(spans):
        if begin > position:
            report.problems.append(
                f"bytes {position}..{begin} of the data section belong to no tensor "
                "(the safetensors library refuses such files)"
            )
        position = max(position, end)
    if position < data_size:
        report.problems.append(
            f"{data_size - position} bytes after the last tensor belong to no tensor "
            "(the safetensors library refuses such files)"
        )
