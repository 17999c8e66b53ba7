"""What a tag may be: one rule for tags given at push and tags set later, so that a value
refused by ``adapters tag`` cannot come in through ``adapters push --tag`` instead."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from registry.errors import ArgumentError, InvalidNameError

TAG_KEY_MAX = 128
TAG_VALUE_MAX = 1000


def tag_problems(
    tags: Mapping[str, str], remove: Iterable[str] = ()
) -> list[InvalidNameError | ArgumentError]:
    """Every problem with ``tags`` (and the keys in ``remove``), none if all are valid."""
    problems: list[InvalidNameError | ArgumentError] = []
    for key in [*tags, *remove]:
        if _bad_key(key):
            problems.append(InvalidNameError(f"invalid tag key {key[:TAG_KEY_MAX]!r}"))
    for key, value in tags.items():
        if _bad_value(value):
            problems.append(
                ArgumentError(
                    f"tag {key[:TAG_KEY_MAX]}: the value must be printable text of at most "
                    f"{TAG_VALUE_MAX} characters"
                )
            )
    return problems


def broken_tag_rule(key: str, value: str) -> str | None:
    """The rule the tag ``key=value`` breaks, said for a reader; None when it keeps them."""
    if _bad_key(key):
        return f"the key must be 1 to {TAG_KEY_MAX} printable characters without spaces"
    if _bad_value(value):
        return f"the value must be printable text of at most {TAG_VALUE_MAX} characters"
    return None


def _bad_key(key: str) -> bool:
    return not key or len(key) > TAG_KEY_MAX or any(c.isspace() or not c.isprintable() for c in key)


def _bad_value(value: str) -> bool:
    return len(value) > TAG_VALUE_MAX or any(not c.isprintable() for c in value)
