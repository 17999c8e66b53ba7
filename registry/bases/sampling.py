"""The ``afp-1`` algorithm (docs/fingerprint.md): which values are sampled, and the digests.

Every source (files, a live module) reads the values at ``sample_indices`` of each tensor and
hands the samples to ``assemble_fingerprint``, so equal weights give equal fingerprints
whatever they were read from.
"""

from __future__ import annotations

import functools
import hashlib
import math
from collections.abc import Mapping, Sequence

from registry.bases.fingerprint import (
    ALGORITHM,
    SAMPLES_PER_TENSOR,
    Fingerprint,
    TensorSample,
    name_key,
)
from registry.errors import FingerprintError
from registry.formats.dtypes import DTYPE_BITS
from registry.formats.text import join_problems


def sample_indices(name: str, count: int) -> list[int]:
    """The sampled unit indices of a tensor with ``count`` units, in stratum order.

    ``[0, count)`` is cut into K = min(count, 64) strata; stratum j picks
    ``h_j mod length`` where h_j is the first 8 bytes (little-endian) of
    sha256(utf8(name) + b"\\0" + ascii(j)).
    """
    return list(_sample_indices(name, count))


# Pure in (name, count): a live model is fingerprinted again on every load.
@functools.lru_cache(maxsize=8192)
def _sample_indices(name: str, count: int) -> tuple[int, ...]:
    strata = min(count, SAMPLES_PER_TENSOR)
    seed = hashlib.sha256(name_key(name) + b"\0")
    indices: list[int] = []
    for j in range(strata):
        low = j * count // strata
        high = (j + 1) * count // strata
        hasher = seed.copy()
        hasher.update(str(j).encode("ascii"))
        pick = int.from_bytes(hasher.digest()[:8], "little")
        indices.append(low + pick % (high - low))
    return tuple(indices)


def sample_units(dtype: str, shape: Sequence[int]) -> tuple[int, int]:
    """(unit count, unit size in bytes): elements, or bytes for sub-byte dtypes."""
    bits = DTYPE_BITS[dtype]
    numel = math.prod(shape)
    if bits % 8:
        return numel * bits // 8, 1
    return numel, bits // 8


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be fingerprinted, or None."""
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
    for name in sorted(tensors, key=name_key):
        t = tensors[name]
        key, shape = name_key(name), _shape_text(t.shape)
        structure.update(b"%b\0%b\n" % (key, shape))
        content.update(b"%b\0%b\0%b\0%b\n" % (key, t.dtype.encode("ascii"), shape, t.sample))
    return "sha256:" + structure.hexdigest(), "sha256:" + content.hexdigest()


def assemble_fingerprint(tensors: Mapping[str, TensorSample]) -> Fingerprint:
    """The fingerprint of a whole model given every tensor's sample."""
    problems = [p for p in map(name_problem, tensors) if p is not None]
    if problems:
        raise FingerprintError("cannot fingerprint: " + join_problems(problems))
    structure, content = _digests(tensors)
    total = sum(t.numel for t in tensors.values())
    return Fingerprint(ALGORITHM, structure, content, len(tensors), total, tensors)
