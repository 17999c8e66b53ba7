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
        if (
            not key
            or len(key) > TAG_KEY_MAX
            or any(c.isspace() or not c.isprintable() for c in key)
        ):
            problems.append(InvalidNameError(f"invalid tag key {key[:TAG_KEY_MAX]!r}"))
    for key, value in tags.items():
        if len(value) > TAG_VALUE_MAX or any(not c.isprintable() for c in value):
            problems.append(
                ArgumentError(
                    f"tag {key[:TAG_KEY_MAX]}: the value must be printable text of at most "
                    f"{TAG_VALUE_MAX} characters"
                )
            )
    return problems
