"""Following a server list's cursors: every page of ``{"items", "next_cursor"}`` until
the cursor is null, so a remote list holds what the local one does."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, TypeVar

from registry.remote.codec import decode

T = TypeVar("T")
# As many as the server allows by default; fewer round trips on long lists.
PAGE_SIZE = 1000


def every_page(
    get: Callable[..., Any], path: str, kind: type[T], page_size: int, **params: Any
) -> builtins.list[T]:
    """Every item of the list at ``path``, ``page_size`` a request; ``get(path,
    params=...)`` sends one request and returns its response."""
    query = {k: v for k, v in params.items() if v is not None and v != []}
    query["page_size"] = page_size
    found: builtins.list[T] = []
    while True:
        body = get(path, params=query).json()
        found += decode(builtins.list[kind], body["items"])  # type: ignore[valid-type]
        if body.get("next_cursor") is None:
            return found
        query["cursor"] = body["next_cursor"]
