"""Whether two sampled float values are one weight in two dtypes: the exact cast rule.

A cast is exact. Where one dtype holds every value of the other (F64 > F32 > F16, BF16 > the
float8 kinds), rounding the higher-precision value to the lower dtype (round to nearest, ties
to even, overflow to infinity; F8_E4M3, which has no infinity, saturates as torch does) must
give the lower-precision value bit for bit. Where neither does (F16 and BF16, F8_E4M3 and F8_E5M2),
both must be casts of one F32 value: some F32 ``x`` rounds to each. Anything else, even one
unit in the last place away, is other weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FloatFormat:
    mantissa: int  # stored mantissa bits
    emin: int  # exponent of the smallest normal value
    max_finite: float
    has_inf: bool  # else overflow saturates to max_finite
    rank: int  # precision order; formats of equal rank hold no superset of each other

    def round(self, x: float) -> float:
        """``x`` rounded to this format (nearest, ties to even), as an exact float64."""
        if math.isinf(x) and not self.has_inf:
            return math.copysign(self.max_finite, x)
        if math.isnan(x) or math.isinf(x) or x == 0:
            return x
        _, exp = math.frexp(abs(x))  # |x| = m * 2**exp with m in [0.5, 1)
        ulp = math.ldexp(1.0, max(exp - 1, self.emin) - self.mantissa)
        rounded = round(abs(x) / ulp) * ulp  # exact quotient; round() ties to even
        if rounded > self.max_finite:
            rounded = math.inf if self.has_inf else self.max_finite
        return math.copysign(rounded, x)

    def interval(self, value: float) -> tuple[float, float]:
        """The reals (closed bounds) that may round to the finite ``value``."""
        magnitude = abs(value)
        exp = math.frexp(magnitude)[1] if magnitude else self.emin + 1
        ulp = math.ldexp(1.0, max(exp - 1, self.emin) - self.mantissa)
        below = ulp / 2 if magnitude == math.ldexp(0.5, exp) and exp - 1 > self.emin else ulp
        low, high = magnitude - below / 2, magnitude + ulp / 2
        if magnitude == 0:
            low = -high
        return (low, high) if value > 0 or math.copysign(1, value) > 0 else (-high, -low)


def _f(mantissa: int, emin: int, max_finite: float, has_inf: bool, rank: int) -> FloatFormat:
    return FloatFormat(mantissa, emin, max_finite, has_inf, rank)


FORMATS = {
    "F64": _f(52, -1022, 1.7976931348623157e308, True, 4),
    "F32": _f(23, -126, math.ldexp(2 - 2**-23, 127), True, 3),
    "F16": _f(10, -14, 65504.0, True, 2),
    "BF16": _f(7, -126, math.ldexp(2 - 2**-7, 127), True, 2),
    "F8_E5M2": _f(2, -14, 57344.0, True, 1),
    "F8_E4M3": _f(3, -6, 448.0, False, 1),
}


def _same(x: float, y: float) -> bool:
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return x == y and math.copysign(1, x) == math.copysign(1, y)


def is_cast(a_dtype: str, a: float, b_dtype: str, b: float) -> bool:
    """Whether ``a`` (in ``a_dtype``) and ``b`` (in ``b_dtype``) are exact casts of one value."""
    fa, fb = FORMATS[a_dtype], FORMATS[b_dtype]
    if fa.rank != fb.rank:
        (_, high), (lo, low) = sorted(((fa, a), (fb, b)), key=lambda p: -p[0].rank)
        return _same(lo.round(high), low)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return any(
        _same(fa.round(x), a) and _same(fb.round(x), b)
        for x in _common_candidates(fa, a, fb, b)
        if _same(FORMATS["F32"].round(x), x)
    )


def _common_candidates(fa: FloatFormat, a: float, fb: FloatFormat, b: float) -> list[float]:
    """F32 values that round to ``a`` and ``b`` if any do: the ends and middle of the overlap
    of their rounding intervals (an infinity's interval is the finite side's)."""
    finite = [(f, v) for f, v in ((fa, a), (fb, b)) if not math.isinf(v)]
    if not finite:
        return [a] if a == b else []
    bounds = [f.interval(v) for f, v in finite]
    low, high = max(lo for lo, _ in bounds), min(hi for _, hi in bounds)
    if low > high:
        return []
    return [low, high, (low + high) / 2, a, b]
