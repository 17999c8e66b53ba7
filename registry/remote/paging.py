"""Following a server list's cursors: every page of ``{"items", "next_cursor"}`` until
the cursor is null, so a remote list holds what the local one does.

A server (or a proxy in front of it) that hands back a cursor it gave before, or pages
that never end and never hold anything, would keep a client asking forever: ``Cursors``
refuses both with a one-line ``ServerError`` instead.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any, TypeVar

from registry.errors import ServerError
from registry.remote.codec import decode

T = TypeVar("T")
# As many as the server allows by default; fewer round trips on long lists.
PAGE_SIZE = 1000
# Empty pages in a row that still point at a next one: a server that makes no progress.
_MAX_EMPTY_PAGES = 16


class Cursors:
    """The cursors of one paged list as they arrive; ``follow`` refuses a repeated one
    and a run of empty pages that keep pointing further."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._seen: set[str] = set()
        self._empty = 0

    def follow(self, cursor: str, items: int) -> str:
        """``cursor`` (the page after one of ``items`` items), checked before it is sent."""
        if cursor in self._seen:
            raise ServerError(
                f"the server repeated a page cursor of {self._path}, so the list would never "
                "end; check the server (or the proxy in front of it) and try again"
            )
        self._empty = self._empty + 1 if items == 0 else 0
        if self._empty >= _MAX_EMPTY_PAGES:
            raise ServerError(
                f"the server sent {self._empty} empty pages of {self._path} in a row, each "
                "pointing further; check the server (or the proxy in front of it)"
            )
        self._seen.add(cursor)
        return cursor


def every_page(
    get: Callable[..., Any], path: str, kind: type[T], page_size: int, **params: Any
) -> builtins.list[T]:
    """Every item of the list at ``path``, ``page_size`` a request; ``get(path,
    params=...)`` sends one request and returns its response."""
    query = {k: v for k, v in params.items() if v is not None and v != []}
    query["page_size"] = page_size
    found: builtins.list[T] = []
    cursors = Cursors(path)
    while True:
        body = get(path, params=query).json()
        items = decode(builtins.list[kind], body["items"])  # type: ignore[valid-type]
        found += items
        if body.get("next_cursor") is None:
            return found
        query["cursor"] = cursors.follow(str(body["next_cursor"]), len(items))
