"""The paged lists besides ``/versions``: the audit log, alias history, tokens, base
records and their relations. Each answers ``{"items": [...], "next_cursor": ...}``; the
client passes ``next_cursor`` back until it is null. ``page_size`` defaults to the
server's page size and is at most its maximum.

Every cursor is a position on a unique key (``paging``), never a count of items before
it, so entries added while a client pages are neither repeated nor skipped:

- ``/log`` goes from the newest event back, keyed on the event id (which only grows);
  the caller's namespace is part of the query, so a namespaced token's pages are full
  pages of its own events. ``limit`` caps the whole walk at the newest ``limit`` events.
- ``/aliases/history`` is append-only (database triggers), oldest first: the n-th entry of
  a name's history never changes, so its ordinal is its key.
- ``/tokens`` by name, ``/bases`` by (name, revision, id), ``/bases/relations`` by
  (source, target): each unique.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from registry.errors import ArgumentError
from registry.remote.codec import encode
from registry.server.auth import Caller
from registry.server.context import Context
from registry.server.paging import Key, keyed_page, make_cursor, read_cursor
from registry.server.query import is_whole_number, query_text
from registry.store.refs import validate_name

T = TypeVar("T")


def _text(request: Request, key: str) -> str | None:
    return query_text(request, key, required=False)


def _number(request: Request, key: str) -> int | None:
    text = _text(request, key)
    if text is None:
        return None
    if not is_whole_number(text) or int(text) < 1:
        raise ArgumentError(f"query parameter {key!r} must be a whole number from 1, not {text!r}")
    return int(text)


def page_size(ctx: Context, request: Request) -> int:
    size = _number(request, "page_size") or ctx.settings.page_size
    if size > ctx.settings.max_page_size:
        raise ArgumentError(f"page_size must be between 1 and {ctx.settings.max_page_size}")
    return size


def _page(items: Any, following: str | None) -> Response:
    return JSONResponse({"items": encode(items), "next_cursor": following})


async def keyed_list(
    ctx: Context,
    request: Request,
    caller: Caller,
    kind: str,
    scope: Sequence[str | None],
    load: Callable[[], list[T]],
    key_of: Callable[[T], Key],
) -> Response:
    """A page of the list ``load`` makes, keyed by ``key_of`` (unique in the list)."""
    size, cursor = page_size(ctx, request), _text(request, "cursor")
    found = await ctx.call(caller, load)
    page, following = keyed_page(found, key_of, kind=kind, scope=scope, cursor=cursor, size=size)
    return _page(page, following)


async def log(ctx: Context, request: Request, caller: Caller) -> Response:
    ref = _text(request, "ref")
    if ref is not None:
        caller.require_ref(ref)
    actions = request.query_params.getlist("action")
    actor = _text(request, "actor")
    limit = _number(request, "limit")
    size, cursor = page_size(ctx, request), _text(request, "cursor")
    scope = [caller.namespace, ref, actor, str(limit), *sorted(actions)]
    before, sent = None, 0
    if cursor is not None:
        before, sent = (int(v) for v in read_cursor(cursor, "log", scope, (int, int)))
    want = size if limit is None else min(size, limit - sent)
    if want < 1:
        return _page([], None)
    page = await ctx.call(
        caller,
        lambda: ctx.registry.log_page(ref, actions=actions, actor=actor,
                                      namespace=caller.namespace, before=before, size=want),
    )  # fmt: skip
    sent += len(page.events)
    following = None
    if page.more and page.events and (limit is None or sent < limit):
        following = make_cursor("log", scope, (page.events[-1].id, sent))
    return _page(page.events, following)


async def alias_history(ctx: Context, request: Request, caller: Caller) -> Response:
    name = _text(request, "name")
    if name is None:
        raise ArgumentError("missing query parameter 'name'")
    validate_name(name)
    caller.require_name(name)
    alias = _text(request, "alias")

    def numbered() -> list[tuple[int, Any]]:
        return list(enumerate(ctx.registry.alias_history(name, alias), start=1))

    size, cursor = page_size(ctx, request), _text(request, "cursor")
    found = await ctx.call(caller, numbered)
    page, following = keyed_page(found, lambda pair: (pair[0],), kind="alias-history",
                                 scope=[name, alias], cursor=cursor, size=size)  # fmt: skip
    return _page([change for _, change in page], following)


async def tokens(ctx: Context, request: Request, caller: Caller) -> Response:
    return await keyed_list(ctx, request, caller, "tokens", [], ctx.registry.tokens,
                        lambda t: (t.name,))  # fmt: skip


async def bases(ctx: Context, request: Request, caller: Caller) -> Response:
    return await keyed_list(ctx, request, caller, "bases", [], ctx.registry.bases,
                        lambda b: (b.name, b.revision or "", b.id))  # fmt: skip


async def base_relations(ctx: Context, request: Request, caller: Caller) -> Response:
    return await keyed_list(ctx, request, caller, "base-relations", [], ctx.registry.base_relations,
                        lambda r: (r.source, r.target))  # fmt: skip
