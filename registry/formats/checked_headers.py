"""Safetensors headers already checked, kept by their bytes.

Adapters trained with one recipe have the same tensor names, dtypes and shapes, so their
weights files have the same size and begin with the same header, offsets included; only
the data differs. Checking a header (JSON limits, every declaration against the file's
size) gives the same answer each time, and costs more than half of reading a small
adapter's weights. A header that passed is kept with what was read from it, keyed by its
bytes and the file's size (at most ``_CAPACITY`` headers of up to ``_LARGEST`` bytes, least
recently used out first); one with any problem is not kept, so every refusal is worded
afresh. The data is never taken from here: NaN/Inf are looked for in every file.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.bounded_lru import BoundedLru
from registry.formats.model import TensorInfo

_CAPACITY = 64
_LARGEST = 256 * 1024  # a LoRA on every linear layer of a 70B model: about 200 KiB


@dataclass(frozen=True)
class CheckedHeader:
    """What a header that passed its checks declares."""

    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]
    data_start: int


_kept: BoundedLru[tuple[int, bytes], CheckedHeader] = BoundedLru(_CAPACITY)


def known_header(header: bytes, file_size: int) -> CheckedHeader | None:
    """What the checks read from ``header`` in a file of ``file_size`` bytes, if it passed
    them before; the dicts are the caller's own (``TensorInfo`` is immutable)."""
    kept = _kept.get((file_size, header))
    if kept is None:
        return None
    return CheckedHeader(dict(kept.tensors), dict(kept.metadata), kept.data_start)


def keep_header(header: bytes, file_size: int, checked: CheckedHeader) -> None:
    if len(header) > _LARGEST:
        return
    kept = CheckedHeader(dict(checked.tensors), dict(checked.metadata), checked.data_start)
    _kept.put((file_size, header), kept)
