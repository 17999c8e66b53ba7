"""Admin endpoints for what the server trusts and requires: the signing keys whose
signatures count (listed by name, key id and fingerprint; private keys are never sent),
and the promotion policy. Each change is checked as the local command checks it and
audited with the admin token's name; a new policy applies from the next gated alias move.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from registry.remote import wire
from registry.server.auth import Caller
from registry.server.body import read_json
from registry.server.context import Context, ok
from registry.server.lists import keyed_list


async def list_keys(ctx: Context, request: Request, caller: Caller) -> Response:
    return await keyed_list(ctx, request, caller, "keys", [], ctx.registry.trusted_keys,
                            lambda k: (k.name,))  # fmt: skip


async def trust_key(ctx: Context, request: Request, caller: Caller) -> Response:
    body = wire.parse_body(wire.KeyBody, await read_json(request, ctx.settings))
    data = body.public_key.encode()
    return ok(await ctx.call(caller, lambda: ctx.registry.trust_key(body.name, data)), 201)


async def untrust_key(ctx: Context, request: Request, caller: Caller) -> Response:
    body = wire.parse_body(wire.KeyNameBody, await read_json(request, ctx.settings))
    return ok(await ctx.call(caller, lambda: ctx.registry.untrust_key(body.name)))


async def policy(ctx: Context, request: Request, caller: Caller) -> Response:
    return ok(await ctx.call(caller, ctx.registry.policy))


async def check_policy(ctx: Context, request: Request, caller: Caller) -> Response:
    body = wire.parse_body(wire.PolicyBody, await read_json(request, ctx.settings))
    return ok(await ctx.call(caller, lambda: ctx.registry.check_policy(body.document)))


async def set_policy(ctx: Context, request: Request, caller: Caller) -> Response:
    body = wire.parse_body(wire.PolicyBody, await read_json(request, ctx.settings))
    return ok(await ctx.call(caller, lambda: ctx.registry.set_policy(body.document)))
