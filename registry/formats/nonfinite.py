"""Finding tensors that hold NaN or Inf. The only tensor-value read of a plain push.

A float is NaN or Inf exactly when its exponent bits are all ones (for the float8
``E4M3`` formats, which have no infinity: when all bits but the sign are ones), so
the check runs on the raw bits with numpy over a memory map: no torch import, no
conversion, and every float dtype of the format handled alike.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Mapping
from pathlib import Path

from registry.errors import ValidationError
from registry.formats.model import TensorInfo
from registry.formats.safetensors_header import read_safetensors_header

# Elements checked per step, so a huge tensor never needs a same-sized temporary mask.
_CHUNK = 1 << 22

# dtype -> (unsigned integer view, mask that is all ones for NaN/Inf). Complex types are
# pairs of floats and share their component's rule.
_RULES: dict[str, tuple[str, int]] = {
    "F64": ("<u8", 0x7FF0_0000_0000_0000),
    "C128": ("<u8", 0x7FF0_0000_0000_0000),
    "F32": ("<u4", 0x7F80_0000),
    "C64": ("<u4", 0x7F80_0000),
    "F16": ("<u2", 0x7C00),
    "BF16": ("<u2", 0x7F80),
    "F8_E5M2": ("u1", 0x7C),
    "F8_E4M3": ("u1", 0x7F),
}


def find_nonfinite(path: Path, tensors: Mapping[str, TensorInfo] | None = None) -> list[str]:
    """Names of the tensors in safetensors file ``path`` that contain NaN or Inf, sorted.

    The header is validated first (see ``read_safetensors_header``), so offsets are trusted;
    ``tensors``: that header's tensors, when the caller has just validated it (not parsed
    a second time).
    """
    if tensors is None:
        tensors, _ = read_safetensors_header(path)
    checked = {name: info for name, info in tensors.items() if info.dtype in _RULES}
    if not checked:
        return []
    bad: list[str] = []
    try:
        with open(path, "rb") as handle:
            (header_length,) = struct.unpack("<Q", handle.read(8))
            data_start = 8 + header_length
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
                for run in _runs(checked):
                    unit, mask = _RULES[checked[run[0]].dtype]
                    if len(run) > 1 and not _holds_nonfinite(view, data_start, unit, mask,
                                                             _span(checked, run)):  # fmt: skip
                        continue  # the usual case: one pass over many tensors, all finite
                    bad.extend(
                        name
                        for name in run
                        if _holds_nonfinite(view, data_start, unit, mask, checked[name].offsets)
                    )
    except (OSError, ValueError) as exc:
        raise ValidationError(str(path), [f"cannot read tensor values: {exc}"]) from exc
    return sorted(bad)


def _runs(tensors: Mapping[str, TensorInfo]) -> list[list[str]]:
    """The tensors in file order, grouped into runs that lie back to back and share a
    rule: each run is checked in one pass (per-tensor numpy calls cost more than the
    check itself for the small tensors of an adapter)."""
    ordered = sorted(tensors, key=lambda name: (tensors[name].offsets, name))
    runs: list[list[str]] = []
    for name in ordered:
        info = tensors[name]
        if runs:
            last = tensors[runs[-1][-1]]
            if _RULES[last.dtype] == _RULES[info.dtype] and last.offsets[1] == info.offsets[0]:
                runs[-1].append(name)
                continue
        runs.append([name])
    return runs


def _span(tensors: Mapping[str, TensorInfo], run: list[str]) -> tuple[int, int]:
    return tensors[run[0]].offsets[0], tensors[run[-1]].offsets[1]


def _holds_nonfinite(
    view: mmap.mmap, data_start: int, unit: str, mask: int, offsets: tuple[int, int]
) -> bool:
    import numpy as np

    itemsize = np.dtype(unit).itemsize
    begin, end = offsets
    values = np.frombuffer(view, dtype=unit, count=(end - begin) // itemsize,
                           offset=data_start + begin)  # fmt: skip
    try:
        return _any_all_ones(values, np.array(mask, dtype=unit))
    finally:
        del values  # release the buffer before the map closes


def _any_all_ones(values: object, mask: object) -> bool:
    import numpy as np

    assert isinstance(values, np.ndarray)
    for start in range(0, values.size, _CHUNK):
        chunk = values[start : start + _CHUNK]
        if bool(np.any((chunk & mask) == mask)):
            return True
    return False
