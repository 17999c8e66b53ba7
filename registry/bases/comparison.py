"""Comparing two ``afp-1`` fingerprints: same weights, a dtype cast of them, or others.

Equal content digests mean identical weights; other names or shapes a structure mismatch.
Otherwise the per-tensor samples decide, value by value: a value in another dtype counts as
the same only when it is an exact cast (``exact_cast``), so a cast (fp32 -> bf16) is told
apart from weights that differ by less than the rounding of the coarser dtype.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from registry.bases.exact_cast import is_cast
from registry.bases.fingerprint import (
    SAMPLES_PER_TENSOR,
    Fingerprint,
    TensorSample,
    name_key,
    select_names,
)
from registry.bases.sample_values import decode_sample
from registry.bases.sampling import sample_units
from registry.errors import FingerprintError
from registry.formats.text import join_problems

Verdict = Literal["identical", "cast", "different", "structure-mismatch"]


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


def compare(
    a: Fingerprint, b: Fingerprint, names: Iterable[str] | None = None
) -> FingerprintComparison:
    """Compare fingerprint ``a`` (expected) with ``b`` (found).

    "identical": equal content digests, and equal full-content digests wherever both sides
    have one for a tensor of the same dtype (exhaustive mode). "structure-mismatch": names or
    shapes differ.
    Otherwise the samples of ``names`` (module paths select the tensors below them; default:
    every tensor sampled in both) decide: "cast" when every value is an exact cast of its pair
    (``exact_cast.is_cast``), some dtype differs and no full-content digest of a same-dtype
    tensor differs, else "different". Full digests cannot judge a cast, so a tensor in another
    dtype is judged on its samples alone.
    """
    if a.algorithm != b.algorithm:
        raise FingerprintError(f"cannot compare {a.algorithm} with {b.algorithm} fingerprints")
    if a.structure != b.structure:
        return _structure_mismatch(a, b)
    full = [n for n in (a.digests if names is None else _compared_names(a, b, names))
            if n in b.digests and a.tensors[n].dtype == b.tensors[n].dtype]  # fmt: skip
    changed = [n for n in full if a.digests[n] != b.digests[n]]
    if a.content == b.content and not changed:
        in_full = f"; {len(full)} tensors compared in full" if full else ""
        return FingerprintComparison(
            "identical", f"identical weights (content {a.content}{in_full})", compared=tuple(full)
        )
    selected = _compared_names(a, b, names)
    shares: dict[str, float] = {}
    total = differ = 0
    for name in selected:
        count, bad = _differing(a.tensors[name], b.tensors[name])
        total, differ = total + count, differ + bad
        if bad:
            shares[name] = bad / count
        elif name in changed:
            # The samples agree but the full contents do not: some unsampled value differs.
            shares[name] = 1 / a.tensors[name].numel
    pairs = {(a.tensors[n].dtype, b.tensors[n].dtype) for n in selected}
    changes = tuple(sorted((x, y) for x, y in pairs if x != y))
    return _samples_verdict(selected, total, differ, shares, changes, changed)


def _samples_verdict(
    selected: Sequence[str],
    total: int,
    differ: int,
    shares: Mapping[str, float],
    changes: tuple[tuple[str, str], ...],
    changed: Sequence[str] = (),
) -> FingerprintComparison:
    share = differ / total if total else 0.0
    worst = tuple(name for name, _ in heapq.nsmallest(5, shares.items(), key=_by_share))
    verdict: Verdict = "different"
    if differ == 0 and changed:
        summary = (
            f"different weights: the sampled values agree, but the full contents of "
            f"{len(changed)} tensors differ ({', '.join(changed[:3])})"
        )
    elif differ == 0 and changes:
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
    return -item[1], name_key(item[0])


def _compared_names(a: Fingerprint, b: Fingerprint, names: Iterable[str] | None) -> list[str]:
    if names is None:
        common = [n for n in a.tensors if n in b.tensors]
        if not common:
            raise FingerprintError("the two fingerprints keep samples of no common tensor")
        return common
    wanted = list(names)
    in_a = select_names(a.tensors, wanted, "the first fingerprint")
    in_b = select_names(b.tensors, wanted, "the second fingerprint")
    lacking = sorted(set(in_a) ^ set(in_b), key=name_key)
    if lacking:
        raise FingerprintError(
            f"only one fingerprint keeps samples of {join_problems(lacking)}; "
            "compare with a complete one"
        )
    return in_a


def _structure_mismatch(a: Fingerprint, b: Fingerprint) -> FingerprintComparison:
    # A side keeping only some samples cannot say which names it lacks.
    missing = [n for n in a.tensors if n not in b.tensors] if b.is_complete else []
    extra = [n for n in b.tensors if n not in a.tensors] if a.is_complete else []
    mismatched = [
        n for n in a.tensors if n in b.tensors and a.tensors[n].shape != b.tensors[n].shape
    ]
    parts = [
        f"{label} ({join_problems(found, 3)})"
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


def _differing(a: TensorSample, b: TensorSample) -> tuple[int, int]:
    """(values compared, values that differ) between two samples of one tensor."""
    if a.dtype == b.dtype:
        # Same dtype: only the identical bytes count as equal; a cast cannot explain a change.
        unit = sample_units(a.dtype, a.shape)[1]
        chunks = range(0, max(len(a.sample), len(b.sample)), unit)
        differ = sum(a.sample[i : i + unit] != b.sample[i : i + unit] for i in chunks)
        return len(chunks), differ
    da, db = decode_sample(a.dtype, a.sample), decode_sample(b.dtype, b.sample)
    if da is None or db is None or da[0] != db[0] or len(da[1]) != len(db[1]):
        # No value comparison between these dtypes (say BOOL and F16): every value differs.
        count = min(a.numel, SAMPLES_PER_TENSOR)
        return count, count
    if da[0] == "int":
        return len(da[1]), sum(x != y for x, y in zip(da[1], db[1], strict=True))
    pairs = zip(da[1], db[1], strict=True)
    return len(da[1]), sum(not is_cast(a.dtype, x, b.dtype, y) for x, y in pairs)
