"""Reading a safetensors header without torch, treating the file as hostile input.

Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the data section.
The JSON maps tensor names to ``{"dtype", "shape", "data_offsets": [begin, end]}`` (offsets
relative to the data section) plus an optional ``__metadata__`` of strings. Every declaration is
checked against the file: a lying length, offsets outside the data, a size that does not match
the shape, two tensors sharing bytes, or data bytes that belong to no tensor (which the
safetensors library refuses to load) are all reported, each one.

This is the one parser of safetensors headers: adapter weights are read through
``inspect_safetensors_header``, base-model checkpoints (the fingerprint) through
``inspect_header_stream`` with their own ``HeaderWording``.
"""

from __future__ import annotations

import json
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from registry.errors import ValidationError
from registry.formats.checked_headers import CheckedHeader, keep_header, known_header
from registry.formats.dtypes import DTYPE_BITS
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


@dataclass
class HeaderReport:
    """What a header declares, and every problem found with it."""

    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    data_start: int = 0  # file offset of the data section (tensor offsets are relative to it)


class HeaderWording:
    """The sentences header problems are reported in.

    The checks are the same for every caller; a caller whose messages follow other
    conventions (the fingerprint's) overrides the methods for the problems it words otherwise.
    """

    def too_short(self, size: int) -> str:
        return (
            f"file is {size} bytes, too short for a safetensors file (8-byte length + JSON header)"
        )

    def length_over_limit(self, length: int, available: int) -> str:
        return (
            f"header length {length} bytes exceeds the {MAX_HEADER_BYTES} byte limit; "
            "not a safetensors file?"
        )

    def length_past_end(self, length: int, available: int) -> str:
        return f"header length {length} bytes is larger than the {available} bytes that follow it"

    def not_utf8(self, exc: UnicodeDecodeError) -> str:
        return f"header is not UTF-8 (byte {exc.start})"

    def duplicate_key(self, key: str) -> str:
        return f"header declares {key!r} more than once"

    def not_json(self, exc: ValueError | RecursionError) -> str:
        if isinstance(exc, RecursionError):
            return f"header is {too_deep()}"
        if isinstance(exc, JsonLimitError):
            return f"header: {exc}"
        if isinstance(exc, json.JSONDecodeError):
            return f"header is not valid JSON: {exc.msg} at byte {exc.pos}"
        return f"header is not valid JSON: {exc}"

    def not_object(self, document: object) -> str:
        return f"header is JSON {type(document).__name__}, expected an object of tensors"

    def tensor(self, name: str) -> str:
        """How a tensor is named at the start of its problems."""
        return f"tensor {show(name)}"

    def offsets_backwards(self, label: str, offsets: list[int]) -> str:
        return f"{label}: data_offsets {offsets} end before they begin"

    def offsets_past_end(self, label: str, offsets: list[int], data_size: int) -> str:
        return f"{label}: data_offsets {offsets} reach past the {data_size} byte data section"

    def not_whole_bytes(self, label: str, info: TensorInfo, span: int) -> str:
        return f"{label}: {_declared(info)} is not a whole number of bytes"

    def wrong_size(self, label: str, info: TensorInfo, span: int, needed: int) -> str:
        return f"{label}: data_offsets span {span} bytes but {_declared(info)} needs {needed}"

    def overlap(self, first: str, second: str, begin: int, end: int) -> str:
        return (
            f"tensors {show(first)} and {show(second)} overlap "
            f"(bytes {begin}..{end} of the data section)"
        )


WORDING = HeaderWording()


class _Readable(Protocol):
    def read(self, size: int, /) -> bytes: ...


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(repr(key))
        self.key = key


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
    try:
        with Path(path).open("rb") as handle:
            return inspect_header_stream(handle, os.fstat(handle.fileno()).st_size)
    except OSError as exc:
        return HeaderReport(problems=[f"cannot read: {exc.strerror or exc}"])


def inspect_header_stream(
    handle: _Readable, size: int, wording: HeaderWording = WORDING
) -> HeaderReport:
    """Check the header of a safetensors file of ``size`` bytes open at its start in ``handle``
    (a file or an mmap); problems are worded by ``wording``. ``OSError`` propagates."""
    report = HeaderReport()
    header = _read_header_bytes(handle, size, report, wording)
    if header is None:
        return report
    known = known_header(header, size)
    if known is not None:  # the same bytes in a file of the same size passed before
        return HeaderReport(known.tensors, known.metadata, [], known.data_start)
    document = _parse_json(header, report, wording)
    if document is None:
        return report
    report.data_start = _LENGTH.size + len(header)
    _check_entries(document, size - report.data_start, report, wording)
    if not report.problems:
        keep_header(header, size, CheckedHeader(report.tensors, report.metadata, report.data_start))
    return report


def _read_header_bytes(
    handle: _Readable, size: int, report: HeaderReport, wording: HeaderWording
) -> bytes | None:
    if size < _LENGTH.size:
        report.problems.append(wording.too_short(size))
        return None
    (length,) = _LENGTH.unpack(handle.read(_LENGTH.size))
    available = size - _LENGTH.size
    if length > MAX_HEADER_BYTES:
        report.problems.append(wording.length_over_limit(length, available))
        return None
    if length > available:
        report.problems.append(wording.length_past_end(length, available))
        return None
    header: bytes = handle.read(length)
    if len(header) != length:
        report.problems.append("file changed while being read")
        return None
    return header


def _parse_json(
    header: bytes, report: HeaderReport, wording: HeaderWording
) -> dict[str, Any] | None:
    try:
        text = header.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.problems.append(wording.not_utf8(exc))
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
        report.problems.append(wording.duplicate_key(exc.key))
        return None
    except (ValueError, RecursionError) as exc:
        report.problems.append(wording.not_json(exc))
        return None
    limits = json_problems(document, "header")
    if limits:
        report.problems.extend(limits)
        return None
    if not isinstance(document, dict):
        report.problems.append(wording.not_object(document))
        return None
    return document


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # A repeated key would let a second declaration hide the first.
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in JSON")


def _is_count(value: object, limit: int = _LIMIT) -> bool:
    # u64 in the format; json_limits already bounds integers to 20 digits.
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < limit


def _check_entries(
    document: dict[str, Any], data_size: int, report: HeaderReport, wording: HeaderWording
) -> None:
    spans: list[tuple[int, int, str]] = []
    for name, entry in document.items():
        if name == "__metadata__":
            _check_metadata(entry, report)
            continue
        info = _check_tensor(name, entry, data_size, report, wording)
        if info is None:
            continue
        report.tensors[name] = info
        if info.offsets[1] > info.offsets[0]:
            spans.append((info.offsets[0], info.offsets[1], name))
    _check_overlaps(spans, report, wording)
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
    name: str, entry: object, data_size: int, report: HeaderReport, wording: HeaderWording
) -> TensorInfo | None:
    label = wording.tensor(name)
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
        problems.append(wording.offsets_backwards(label, offsets))
    elif offsets[1] > data_size:
        problems.append(wording.offsets_past_end(label, offsets, data_size))
    if problems:
        report.problems.extend(problems)
        return None
    assert isinstance(dtype, str) and isinstance(shape, list) and isinstance(offsets, list)
    info = TensorInfo(name, dtype, tuple(shape), (offsets[0], offsets[1]))
    bits = info.numel * DTYPE_BITS[dtype]
    span = offsets[1] - offsets[0]
    if bits >= 8 * _LIMIT:
        # Said without the number itself: it may have more digits than Python will print.
        report.problems.append(f"{label}: {_declared(info)} declares more than 2**64 bytes")
        return None
    if bits % 8:
        report.problems.append(wording.not_whole_bytes(label, info, span))
        return None
    if span != bits // 8:
        report.problems.append(wording.wrong_size(label, info, span, bits // 8))
        return None
    return info


def _declared(info: TensorInfo) -> str:
    shape = info.shape
    if len(shape) <= 8:
        return f"{info.dtype} {show_shape(shape)}"
    return f"{info.dtype} {show_shape(shape[:8])[:-1]}, ... ({len(shape)} dimensions)]"


def _check_overlaps(
    spans: list[tuple[int, int, str]], report: HeaderReport, wording: HeaderWording
) -> None:
    spans.sort()
    furthest: tuple[int, int, str] | None = None
    for span in spans:
        if furthest is not None and span[0] < furthest[1]:
            report.problems.append(
                wording.overlap(furthest[2], span[2], span[0], min(span[1], furthest[1]))
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
