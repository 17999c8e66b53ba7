"""Who is calling, and whether their token may do what they ask.

Every request carries ``Authorization: Bearer adp_...``; a missing, unknown, expired or
revoked token gets the same 401 (no hint which). A role below the one an endpoint needs,
or a name outside the token's namespace, gets a 403 that names neither the version nor
anything else stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio.to_thread
from sqlalchemy.engine import Engine

from registry.security.tokens import ROLES, TokenInfo, authenticate, secret_digest
from registry.server.memo import Memo
from registry.server.problems import HttpProblem
from registry.store.catalog.generation import CatalogGeneration
from registry.store.refs import parse_ref


def role_token(role: str) -> str:
    """'a writer token', 'an admin token': how a refusal names the role it needs."""
    return f"{'an' if role[0] in 'aeiou' else 'a'} {role} token"


@dataclass(frozen=True)
class Caller:
    """An authenticated token (or the anonymous reader of a read-only server)."""

    name: str
    role: str
    namespace: str | None

    def require(self, role: str) -> None:
        if ROLES.index(self.role) < ROLES.index(role):
            raise HttpProblem(403, "forbidden", f"this needs {role_token(role)}; ask an admin")

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

    After a write (any write: an eval, a push), a token kept from before is re-checked on
    SQLite by one indexed read of its row on the generation's own connection, on the event
    loop (no worker thread, no ORM session): still there, not revoked, same role and
    namespace -> kept under the new generation; anything else -> looked up in full.
    """

    def __init__(
        self, engine: Engine, anonymous_read: bool, generation: CatalogGeneration | None = None
    ) -> None:
        self.engine = engine
        self.anonymous_read = anonymous_read
        self.generation = generation
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

        key = _key(secret)

        async def look_up() -> TokenInfo:
            kept = self._still_kept(key)
            if kept is not None:
                return kept
            token = await anyio.to_thread.run_sync(authenticate, self.engine, secret)
            if token is None:
                raise _refused()
            return token

        # Keyed by the hash, so no secret is kept; a dict lookup by a hash of a
        # 256-bit secret tells a timing attacker nothing about any stored secret.
        info = await self._accepted.load(key, generation, look_up)
        if not info.active():  # expired since it was kept
            raise _refused()
        return Caller(info.name, info.role, info.namespace)

    def _still_kept(self, key: str) -> TokenInfo | None:
        """The token kept before the last write, if its row still says the same."""
        kept = self._accepted.last(key)
        if kept is None or self.generation is None:
            return None
        # The key is secret_digest(secret): what the catalog stores of the token.
        rows = self.generation.read(_STILL_ACTIVE, (key,))
        if rows != [(kept.name, kept.role, kept.namespace)]:
            return None  # revoked, deleted or changed: the full look-up decides
        return kept


_STILL_ACTIVE = (
    "SELECT name, role, namespace FROM api_tokens WHERE secret_sha256 = ? AND revoked_at IS NULL"
)


def _refused() -> HttpProblem:
    message = "the token is unknown, expired or revoked; ask for a new one"
    return HttpProblem(401, "unauthenticated", message)


def _key(secret: str) -> str:
    return secret_digest(secret)
