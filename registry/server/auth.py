"""Who is calling, and whether their token may do what they ask.

Every request carries ``Authorization: Bearer adp_...``; a missing, unknown, expired or
revoked token gets the same 401 (no hint which). A role below the one an endpoint needs,
or a name outside the token's namespace, gets a 403 that names neither the version nor
anything else stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy.engine import Engine

from registry.security.tokens import ROLES, TokenInfo, authenticate
from registry.server.memo import Memo
from registry.server.problems import HttpProblem
from registry.store.refs import parse_ref


@dataclass(frozen=True)
class Caller:
    """An authenticated token (or the anonymous reader of a read-only server)."""

    name: str
    role: str
    namespace: str | None

    def require(self, role: str) -> None:
        if ROLES.index(self.role) < ROLES.index(role):
            raise HttpProblem(403, "forbidden", f"this needs a {role} token; ask an admin")

    def covers(self, name: str) -> bool:
        return self.namespace is None or name.startswith(self.namespace + "/")

    def require_name(self, name: str) -> None:
        if not self.covers(name):
            raise HttpProblem(
                403, "forbidden", f"this token may only use names under {self.namespace}/"
            )

    def require_ref(self, ref: str) -> None:
        """A reference's name must be in the namespace (parsed first: bad syntax is a 400)."""
        self.require_name(parse_ref(ref).name)


ANONYMOUS = Caller("anonymous", "reader", None)


class Authenticator:
    """Tokens checked against the catalog, the answers kept while it is unchanged.

    An accepted token is kept under the sha256 of its secret (never the secret itself)
    with the catalog generation read before it was looked up: a revocation, by this
    server or by ``adapters token revoke`` on the same catalog, changes the generation
    and so takes effect on the next request; expiry is checked on every request from the
    kept row. Refused tokens are not kept (guessing must not fill the memory).
    """

    def __init__(self, engine: Engine, anonymous_read: bool) -> None:
        self.engine = engine
        self.anonymous_read = anonymous_read
        self._accepted: Memo[TokenInfo] = Memo()

    async def identify(self, header: str, generation: Any) -> Caller:
        scheme, _, secret = header.partition(" ")
        if not header:
            if self.anonymous_read:
                return ANONYMOUS
            raise HttpProblem(401, "unauthenticated", "send Authorization: Bearer TOKEN")
        secret = secret.strip()
        if scheme.lower() != "bearer":
            raise _refused()

        async def look_up() -> TokenInfo:
            token = await anyio.to_thread.run_sync(authenticate, self.engine, secret)
            if token is None:
                raise _refused()
            return token

        # Keyed by the hash, so no secret is kept; a dict lookup by a hash of a
        # 256-bit secret tells a timing attacker nothing about any stored secret.
        info = await self._accepted.load(_key(secret), generation, look_up)
        if not info.active():  # expired since it was kept
            raise _refused()
        return Caller(info.name, info.role, info.namespace)


def _refused() -> HttpProblem:
    message = "the token is unknown, expired or revoked; ask for a new one"
    return HttpProblem(401, "unauthenticated", message)


def _key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
