"""Endpoints for annotations and records made after a push: tags and descriptions, base
model records a client fingerprinted and the relations between them, and the signature
policy and the base knowledge a client applies before it loads, merges or materialises.

The load policy is enforced where the files are used: the server sends whether
``policy.json`` requires a trusted signature, which key ids it trusts, and the version's
signatures; the client checks each signature against the statement it rebuilds from the
version whose files it has just re-hashed (``registry.remote.loading``).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from registry.remote import wire
from registry.server.auth import Caller
from registry.server.body import read_json
from registry.server.context import Context, ok
from registry.server.derived import client_target


async def load_policy(ctx: Context, request: Request, caller: Caller) -> Response:
    from registry.lifecycle.policy import load_policy as read_policy
    from registry.security.keys import Keyring
    from registry.security.signature_rows import signatures_of

    ref = request.query_params.get("ref") or ""
    caller.require_ref(ref)
    store = ctx.registry.store

    def policy() -> wire.LoadPolicy:
        version = ctx.registry.get(ref)
        if not read_policy(store.root).load_requires_signature:
            return wire.LoadPolicy(False, {}, [])
        trusted = {k.key_id: k.name for k in Keyring(store.root, store.catalog).trusted()}
        return wire.LoadPolicy(True, trusted, signatures_of(store.catalog.engine, version.name,
                                                       version.digest))  # fmt: skip

    return ok(await ctx.call(caller, policy))


async def known_base(ctx: Context, request: Request, caller: Caller) -> Response:
    """What the catalog knows of the base a version was trained on, for the compatibility
    checks a client runs before it loads or merges (base records are no secret: ``/bases``)."""
    from registry.store.base_records import known_base as find_known

    ref = request.query_params.get("ref") or ""
    caller.require_ref(ref)
    catalog = ctx.registry.store.catalog
    return ok(await ctx.call(caller, lambda: find_known(catalog, ctx.registry.get(ref))))


async def set_tags(ctx: Context, request: Request, caller: Caller) -> Response:
    body = wire.parse_body(wire.TagsBody, await read_json(request, ctx.settings))
    caller.require_ref(body.ref)
    return ok(
        await ctx.call(
            caller, lambda: ctx.registry.set_tags(body.ref, body.tags, remove=body.remove)
        )
    )


async def describe(ctx: Context, request: Request, caller: Caller) -> Response:
    body = wire.parse_body(wire.DescribeBody, await read_json(request, ctx.settings))
    caller.require_ref(body.ref)
    return ok(await ctx.call(caller, lambda: ctx.registry.describe(body.ref, body.text)))


async def add_base(ctx: Context, request: Request, caller: Caller) -> Response:
    from registry.store.base_records import check_quantization, record_target

    body = wire.parse_body(wire.BaseBody, await read_json(request, ctx.settings))
    check_quantization(body.quantization)
    catalog = ctx.registry.store.catalog
    target = await ctx.call(caller, lambda: client_target(ctx.registry.store, body.record, caller))
    record = await ctx.call(
        caller,
        lambda: record_target(
            catalog, target, body.name, revision=body.revision, version=body.version,
            quantization=body.quantization, source=target.label,
        ),
    )  # fmt: skip
    return ok(record, 201)


async def link_bases(ctx: Context, request: Request, caller: Caller) -> Response:
    body = wire.parse_body(wire.BaseLinkBody, await read_json(request, ctx.settings))
    return ok(
        await ctx.call(
            caller, lambda: ctx.registry.link_bases(body.source, body.target, body.relation)
        )
    )
