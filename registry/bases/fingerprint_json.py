"""A fingerprint to and from the JSON object the catalog stores (docs/fingerprint.md).

Stored fingerprints are read back as untrusted input: every field is checked, and a complete
one must recompute its own digests.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from registry.bases.fingerprint import ALGORITHM, SAMPLES_PER_TENSOR, Fingerprint, TensorSample
from registry.bases.sampling import assemble_fingerprint, name_problem, sample_units
from registry.bases.tensor_digests import is_digest
from registry.errors import FingerprintError
from registry.formats.dtypes import DTYPE_BITS
from registry.formats.text import join_problems

_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def fingerprint_to_json(fingerprint: Fingerprint) -> dict[str, Any]:
    """A JSON-ready dict; samples are base64; exhaustive mode adds each tensor's ``digest``."""
    document: dict[str, Any] = {
        "algorithm": fingerprint.algorithm,
        "structure": fingerprint.structure,
        "content": fingerprint.content,
        "tensor_count": fingerprint.tensor_count,
        "total_params": fingerprint.total_params,
        "tensors": {
            name: {
                "dtype": t.dtype,
                "shape": list(t.shape),
                "sample": base64.b64encode(t.sample).decode("ascii"),
            }
            for name, t in fingerprint.tensors.items()
        },
    }
    for name, digest in fingerprint.digests.items():
        document["tensors"][name]["digest"] = digest
    return document


def fingerprint_from_json(data: Mapping[str, Any]) -> Fingerprint:
    """Parse ``fingerprint_to_json`` output, checking every field; a complete one is recomputed."""
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
    digests: dict[str, str] = {}
    for name, entry in raw.items():
        sample = _parse_sample(str(name), entry, problems)
        if sample is not None:
            tensors[str(name)] = sample
            digest = entry.get("digest")
            if digest is not None and not is_digest(digest):
                problems.append(f"tensor {str(name)!r}: digest is not sha256:<64 hex digits>")
            elif digest is not None:
                digests[str(name)] = digest
    if problems:
        raise FingerprintError("invalid stored fingerprint: " + join_problems(problems))
    fingerprint = Fingerprint(
        ALGORITHM,
        data["structure"],
        data["content"],
        data["tensor_count"],
        data["total_params"],
        tensors,
        digests,
    )
    _check_consistent(fingerprint)
    return fingerprint


def _parse_sample(name: str, entry: object, problems: list[str]) -> TensorSample | None:
    label = f"tensor {name!r}"
    if (problem := name_problem(name)) is not None:
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
    count, unit = sample_units(dtype, shape)
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
    recomputed = assemble_fingerprint(fingerprint.tensors)
    if (recomputed.structure, recomputed.content, recomputed.total_params) != (
        fingerprint.structure,
        fingerprint.content,
        fingerprint.total_params,
    ):
        raise FingerprintError(
            "invalid stored fingerprint: its samples do not recompute its digests"
        )


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
