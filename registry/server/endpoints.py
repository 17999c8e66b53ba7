"""The JSON endpoints of ``/api/v1``: each checks the caller's namespace, calls one
``Registry`` method in a worker thread as the caller, and returns the typed result encoded
by ``registry.remote.codec`` (roles are checked from the table in ``routes``)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import FileResponse, Response

from registry.errors import ArgumentError, IntegrityError, NotFoundError
from registry.lifecycle.results import LineageNode, LineageReport
from registry.remote import wire
from registry.remote.codec import encode
from registry.server.auth import Caller
from registry.server.body import read_json
from registry.server.conditional import none_match
from registry.server.context import GENERATION, Context, Listing, ok
from registry.server.entries import json_bytes
from registry.server.paging import page_after, version_positions
from registry.server.query import is_whole_number, query_text
from registry.store.blob_store import BlobBackend
from registry.store.blobs import BlobStore
from registry.store.list_query import ListQuery
from registry.store.refs import validate_name
from registry.store.results import AdapterVersion

T = TypeVar("T")
_log = logging.getLogger("registry.server")


def _required(request: Request, key: str) -> str:
    value = query_text(request, key)
    assert value is not None
    return value


def _int_param(request: Request, key: str, default: int | None) -> int | None:
    text = query_text(request, key, required=False)
    if text is None:
        return default
    if not is_whole_number(text):
        raise ArgumentError(f"query parameter {key!r} must be a whole number, not {text!r}")
    return int(text)


async def _body(ctx: Context, request: Request, kind: type[T]) -> T:
    return wire.parse_body(kind, await read_json(request, ctx.settings))


# -- reading ----------------------------------------------------------------------------


async def resolve(ctx: Context, request: Request, caller: Caller) -> Response:
    ref = _required(request, "ref")
    caller.require_ref(ref)

    def sent(version: AdapterVersion) -> tuple[str, bytes]:
        body = _json_bytes(encode(version))
        return '"' + hashlib.sha256(body).hexdigest()[:32] + '"', body

    return await _kept(ctx, request, caller, ("resolve", ref), sent)


async def manifest(ctx: Context, request: Request, caller: Caller) -> Response:
    ref = _required(request, "ref")
    caller.require_ref(ref)

    def sent(version: AdapterVersion) -> tuple[str, bytes]:
        # The manifest is immutable: its digest is its ETag.
        return f'"{version.digest}"', _json_bytes(version.manifest.to_dict())

    return await _kept(ctx, request, caller, ("manifest", ref), sent)


async def _kept(
    ctx: Context,
    request: Request,
    caller: Caller,
    key: tuple[str, str],
    sent: Callable[[AdapterVersion], tuple[str, bytes]],
) -> Response:
    """What a reference resolves to, as (ETag, body), kept while the catalog is unchanged
    (the generation was read before the token was checked, so before any row below)."""

    async def make() -> tuple[str, bytes]:
        return sent(await ctx.call(caller, lambda: ctx.registry.get(key[1])))

    kept = await ctx.resolved.load(key, request.scope.get(GENERATION), make)
    etag, body = kept
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})
    return Response(body, media_type="application/json", headers={"ETag": etag})


def _json_bytes(payload: Any) -> bytes:
    # Keys sorted, so that equal content is sent (and tagged) alike.
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def _page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind != "o" or not number.isdigit():
            raise ValueError(text)
        return int(number)
    except ValueError:
        raise ArgumentError("page_token is not one this server gave out") from None


def _query(request: Request) -> ListQuery:
    tags: dict[str, str | None] = {}
    for item in request.query_params.getlist("tag"):
        key, sep, value = item.partition("=")
        tags[key] = value if sep else None
    reverse = query_text(request, "reverse", required=False)
    return ListQuery(
        name=query_text(request, "name", required=False),
        base=query_text(request, "base", required=False),
        method=query_text(request, "method", required=False),
        alias=query_text(request, "alias", required=False),
        tags=tags or None,
        data=query_text(request, "data", required=False),
        where=tuple(request.query_params.getlist("where")),
        status=query_text(request, "status", required=False),
        sort=query_text(request, "sort", required=False) or "name",
        reverse=reverse in ("1", "true"),
        limit=_int_param(request, "limit", None),
    )


async def list_versions(ctx: Context, request: Request, caller: Caller) -> Response:
    query = _query(request)
    if query.data is not None and not str(query.data).lower().startswith("sha256:"):
        raise ArgumentError("data must be a digest sha256:HEX on a server (digest files locally)")
    size = _int_param(request, "page_size", ctx.settings.page_size)
    assert size is not None
    if not 1 <= size <= ctx.settings.max_page_size:
        raise ArgumentError(f"page_size must be between 1 and {ctx.settings.max_page_size}")
    cursor = query_text(request, "cursor", required=False)
    token = query_text(request, "page_token", required=False)
    if cursor is not None and token is not None:
        raise ArgumentError("give cursor or page_token, not both (cursor is the one to use)")
    offset = _page_offset(token)

    async def listing() -> Listing:
        unlimited = replace(query, limit=None) if caller.namespace else query
        # The catalog's records rather than Registry.list's results: an entry already
        # made from the same record is sent as it was (server/entries).
        flt = unlimited.compile()
        found = await ctx.call(
            caller, lambda: ctx.entries.entries(ctx.registry.catalog.list_records(flt))
        )
        found = [v for v in found if caller.covers(v.name)]
        if query.limit is not None:
            found = found[: query.limit]
        keys, descending = version_positions(found, query.sort, query.reverse)
        return Listing([v.body for v in found], keys, descending)

    # The whole listing is kept while the catalog is unchanged, so that each page of a
    # long one (and a repeated one) does not load and encode every version again.
    filters = sorted(
        (k, v) for k, v in request.query_params.multi_items()
        if k not in ("cursor", "page_token", "page_size")
    )  # fmt: skip
    key = ("versions", caller.namespace, tuple(filters))
    found = await ctx.listings.load(key, request.scope.get(GENERATION), listing)
    if token is not None:
        # Offsets, kept for clients of before cursors: they skip or repeat items when
        # versions are pushed while paging.
        page, next_cursor = page_after(found.items, found.keys, found.descending, None,
                                       offset + size)  # fmt: skip
        page = page[offset:]
    else:
        page, next_cursor = page_after(found.items, found.keys, found.descending, cursor, size)
    following = offset + size if offset + size < len(found.items) else None
    token_out = None if following is None or cursor else _page_token(following)
    # As JSONResponse would send {"items": [...], "next_page_token": ..., "next_cursor": ...}.
    body = b"".join((
        b'{"items":[', b",".join(page), b'],"next_page_token":', json_bytes(token_out),
        b',"next_cursor":', json_bytes(next_cursor), b"}",
    ))  # fmt: skip
    return Response(body, media_type="application/json")


async def download_blob(ctx: Context, request: Request, caller: Caller) -> Response:
    ref = _required(request, "ref")
    caller.require_ref(ref)
    sha256 = request.path_params["sha256"]
    version = await ctx.call(caller, lambda: ctx.registry.get(ref))
    if sha256 not in {f.sha256 for f in version.files}:
        raise NotFoundError(f"{version.ref} has no file with sha256 {sha256[:16]}...")
    etag = f'"{sha256}"'
    if none_match(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers={"ETag": etag})  # a blob never changes
    # On a worker thread: an object store's blob is fetched into its read-through cache
    # first, which may take as long as the download.
    path = await ctx.call(caller, lambda: _stored_file(ctx.registry.blobs, sha256))
    if path is None:  # lost from the store: say so, rather than fail in FileResponse
        name = next(f.path for f in version.files if f.sha256 == sha256)
        raise IntegrityError(
            f"{version.ref}: the server's copy of {name} is missing; ask its admin to run "
            f"`adapters verify {version.ref}` on the server"
        )
    return FileResponse(path, media_type="application/octet-stream",
                        headers={"ETag": etag})  # fmt: skip


def _stored_file(blobs: BlobBackend, sha256: str) -> Path | None:
    """The blob's bytes as a file on this machine, or None when the store lost them (or,
    on object storage, holds other bytes: the read-through cache refuses them)."""
    if isinstance(blobs, BlobStore):
        path = blobs.path(sha256)
        return path if path.is_file() else None
    try:
        return blobs.path(sha256)
    except IntegrityError as exc:  # its wording names the store's URL: for the log only
        _log.error("blob download refused: %s", exc)
        return None


async def verify(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.RefBody)
    caller.require_ref(body.ref)
    return ok(await ctx.call(caller, lambda: ctx.registry.verify(body.ref)))


def _prune(nodes: tuple[LineageNode, ...], caller: Caller) -> tuple[LineageNode, ...]:
    return tuple(
        replace(node, links=_prune(node.links, caller))
        for node in nodes
        if caller.covers(node.name)
    )


async def lineage(ctx: Context, request: Request, caller: Caller) -> Response:
    ref = _required(request, "ref")
    caller.require_ref(ref)
    depth = _int_param(request, "depth", 64) or 64
    report: LineageReport = await ctx.call(caller, lambda: ctx.registry.lineage(ref, depth=depth))
    # Relatives outside the token's namespace are left out, not named.
    report = replace(report, ancestors=_prune(report.ancestors, caller),
                     descendants=_prune(report.descendants, caller))  # fmt: skip
    return ok(report)


async def compare(ctx: Context, request: Request, caller: Caller) -> Response:
    a, b = _required(request, "a"), _required(request, "b")
    caller.require_ref(a)
    caller.require_ref(b)
    return ok(await ctx.call(caller, lambda: ctx.registry.compare(a, b)))


async def check_alias(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.AliasBody)
    caller.require_ref(body.ref)
    return ok(
        await ctx.call(
            caller, lambda: ctx.registry.check_alias(body.ref, body.alias, requires=body.requires)
        )
    )


# -- annotating -------------------------------------------------------------------------


async def record_eval(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.EvalBody)
    caller.require_ref(body.ref)
    record = await ctx.call(
        caller,
        lambda: ctx.registry.record_eval(
            body.ref, body.scores, dataset=body.dataset, split=body.split, notes=body.notes
        ),
    )
    return ok(record, 201)


async def set_alias(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.AliasBody)
    caller.require_ref(body.ref)
    return ok(
        await ctx.call(
            caller,
            lambda: ctx.registry.set_alias(
                body.ref, body.alias, requires=body.requires, note=body.note
            ),
        )
    )


async def remove_alias(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.AliasRemoveBody)
    validate_name(body.name)
    caller.require_name(body.name)
    return ok(
        await ctx.call(
            caller, lambda: ctx.registry.remove_alias(body.name, body.alias, note=body.note)
        )
    )


async def yank(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.YankBody)
    caller.require_ref(body.ref)
    return ok(await ctx.call(caller, lambda: ctx.registry.yank(body.ref, body.reason)))


async def unyank(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.RefBody)
    caller.require_ref(body.ref)
    return ok(await ctx.call(caller, lambda: ctx.registry.unyank(body.ref)))


async def remove(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.RemoveBody)
    caller.require_ref(body.ref)
    return ok(
        await ctx.call(
            caller, lambda: ctx.registry.remove(body.ref, force=body.force, reason=body.reason)
        )
    )


async def sign(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.SignBody)
    caller.require_ref(body.ref)
    from registry.security.keys import is_key_name

    # Only a key of the server's own keyring: a path would have the server open any file
    # its user can read (and sign with any key found there).
    if not is_key_name(body.key) or body.key.endswith(".pem"):
        raise ArgumentError(
            f"key {body.key[:100]!r}: a server signs only with a key it holds; give its name "
            "(`adapters key generate NAME` on the server's registry), not a path"
        )
    from registry.security.keys import Keyring

    # Checked here so that the refusal names no path of the server's and no --key PATH.
    keyring = Keyring(ctx.registry.home.root, ctx.registry.catalog)
    if not keyring.private_path(body.key).is_file():
        raise NotFoundError(
            f"the server holds no private key named {body.key!r}; make one with `adapters key "
            f"generate {body.key}` on the server's registry, or give the name of one it holds"
        )
    return ok(await ctx.call(caller, lambda: ctx.registry.sign(body.ref, body.key)), 201)


# -- administering ----------------------------------------------------------------------


async def gc(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.GcBody)
    return ok(await ctx.call(caller, lambda: ctx.registry.gc(dry_run=body.dry_run)))


async def create_token(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.TokenBody)
    created = await ctx.call(
        caller,
        lambda: ctx.registry.create_token(
            body.name, body.role, namespace=body.namespace, expires=body.expires
        ),
    )
    return ok(created, 201)


async def revoke_token(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await _body(ctx, request, wire.TokenNameBody)
    return ok(await ctx.call(caller, lambda: ctx.registry.revoke_token(body.name)))
