"""A string key per PEP 440 version whose byte order is the version order.

Stored next to each version (indexed with the name), it lets the database hand
out a name's versions highest first and narrow them to a specifier's range, so
resolving ``name>=1.0,<2`` reads a handful of rows however many versions exist.
The key mirrors ``packaging.version.Version._key``:

    epoch, release (trailing zeros dropped), pre, post, dev, local

Every part is self-delimiting, so comparing two keys compares the parts in turn:
a number is its digit count as one letter then its digits (``7`` -> ``a7``,
``10`` -> ``b10``); the release ends with ``.``, which sorts below any number.
Only ASCII is used, and PostgreSQL compares the column with the "C" collation,
so both backends order keys byte by byte.
"""

from __future__ import annotations

from functools import lru_cache

from packaging.specifiers import SpecifierSet
from packaging.version import Version

_END_RELEASE = "."
_END_LOCAL = "0"
_END_LOCAL_TEXT = "!"  # below every character a local segment may contain
_PRE = {"a": "1", "b": "2", "rc": "3"}


@lru_cache(maxsize=65536)
def parsed_version(text: str) -> Version:
    """``Version(text)``, parsed once per distinct text: sorting a list of 1,000 versions
    by PEP 440 order otherwise parses each of them every time (a few ms). A ``Version``
    is never changed once made, so one object may serve every caller."""
    return Version(text)


def _number(value: int) -> str:
    digits = str(value)
    if len(digits) <= 25:
        return chr(ord("a") + len(digits) - 1) + digits
    return f"z{len(digits):06d}{digits}"  # absurdly long numbers still sort after short ones


def _public_prefix(version: Version) -> str:
    release = list(version.release)
    while release and release[-1] == 0:
        release.pop()
    parts = [_number(version.epoch), *(_number(r) for r in release), _END_RELEASE]
    if version.pre is None and version.post is None and version.dev is not None:
        parts.append("0")  # 1.0.dev1 sorts below 1.0a1
    elif version.pre is None:
        parts.append("4")  # a final release sorts above its pre-releases
    else:
        parts.append(_PRE[version.pre[0]] + _number(version.pre[1]))
    parts.append("0" if version.post is None else "1" + _number(version.post))
    parts.append("1" if version.dev is None else "0" + _number(version.dev))
    return "".join(parts)


def version_key(version: str | Version) -> str:
    parsed = version if isinstance(version, Version) else Version(version)
    local = "0"
    if parsed.local is not None:
        segments = []
        for part in parsed.local.replace("-", ".").replace("_", ".").split("."):
            # As in packaging: text segments sort below numeric ones.
            segments.append(
                "2" + _number(int(part)) if part.isdigit() else "1" + part.lower() + _END_LOCAL_TEXT
            )
        local = "1" + "".join(segments) + _END_LOCAL
    return _public_prefix(parsed) + local


def specifier_range(spec: SpecifierSet) -> tuple[str | None, str | None]:
    """Keys [low, high) containing every version ``spec`` can match (None: unbounded).

    A superset: operators that do not bound simply (!=, ===, wildcards, the upper
    end of ~=) leave the range open, and the exact rules (pre-releases, post
    releases of an excluded version, local labels) are applied to the rows found.
    """
    low: str | None = None
    high: str | None = None
    for clause in spec:
        op, text = clause.operator, clause.version
        if op == "===" or text.endswith(".*"):
            continue
        bound = Version(text)
        if op in (">=", ">", "==", "~="):
            key = version_key(bound)
            low = key if low is None else max(low, key)
        if op == "<":
            key = version_key(bound)
            high = key if high is None else min(high, key)
        elif op in ("<=", "=="):
            # Above the version and every local label of it ("1.0+cu121" matches <=1.0).
            key = _public_prefix(bound) + "2"
            high = key if high is None else min(high, key)
    return low, high
