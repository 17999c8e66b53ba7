"""The few most recently used prepared values, kept on a model between loads."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TypeVar

T = TypeVar("T")


def kept_recent(kept: dict[Hashable, T], key: Hashable, make: Callable[[], T], limit: int) -> T:
    """``kept[key]``, made with ``make()`` when absent; ``kept`` holds the ``limit`` most
    recently used entries (in order of use, the most recent last)."""
    found = kept.pop(key, None)
    if found is None:
        found = make()
    kept[key] = found
    while len(kept) > limit:
        del kept[next(iter(kept))]
    return found
