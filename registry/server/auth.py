"""Who is calling, and whether their token may do what they ask.

Every request carries ``Authorization: Bearer adp_...``; a missing, unknown, expired or
revoked token gets the same 401 (no hint which). A role below the one an endpoint needs,
or a name outside the token's namespace, gets a 403 that names neither the version nor
anything else stored.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine
from starlette.requests import Request

from registry.security.tokens import ROLES, authenticate
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


def identify(request: Request, engine: Engine, anonymous_read: bool) -> Caller:
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    if not header:
        if anonymous_read:
            return ANONYMOUS
        raise HttpProblem(401, "unauthenticated", "send Authorization: Bearer TOKEN")
    token = authenticate(engine, secret.strip()) if scheme.lower() == "bearer" else None
    if token is None:
        raise HttpProblem(
            401, "unauthenticated", "the token is unknown, expired or revoked; ask for a new one"
        )
    return Caller(token.name, token.role, token.namespace)
