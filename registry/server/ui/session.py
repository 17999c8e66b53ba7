"""Web sessions: an HMAC-signed cookie, and the CSRF token every form carries.

The cookie holds a random nonce, the sha256 of the signed-in token (never the token
itself) and when it was issued, signed with the server's UI secret. It is HttpOnly,
SameSite=Strict, and Secure on https. Nothing is kept in the server's memory, so any
worker or a restarted server with the same secret accepts it; the token is looked up
again on every request, so a revoked or expired token ends its sessions at once.

The CSRF token of a session is an HMAC of its nonce: a form must send it back, and a
POST without it (or with another) is refused before anything runs. Visitors who are not
signed in get a session without a token, so the sign-in form is protected too.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

COOKIE = "adapters_session"
# A session lasts at most this long, whatever the token's own expiry.
MAX_AGE_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Session:
    nonce: str
    token_sha256: str | None  # None: not signed in
    issued: int

    def csrf(self, secret: bytes) -> str:
        return _sign(secret, b"csrf:" + self.nonce.encode())


def _sign(secret: bytes, data: bytes) -> str:
    mac = hmac.new(secret, data, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def new_session(token_sha256: str | None = None) -> Session:
    return Session(secrets.token_urlsafe(18), token_sha256, int(time.time()))


def encode(session: Session, secret: bytes) -> str:
    payload = json.dumps(
        {"n": session.nonce, "t": session.token_sha256, "i": session.issued},
        separators=(",", ":"),
    ).encode()
    body = base64.urlsafe_b64encode(payload).decode().rstrip("=")
    return body + "." + _sign(secret, body.encode())


def decode(value: str | None, secret: bytes) -> Session | None:
    """The session in a cookie, or None for a missing, forged, malformed or stale one."""
    if not value or len(value) > 1024 or "." not in value:
        return None
    body, _, signature = value.partition(".")
    if not hmac.compare_digest(signature, _sign(secret, body.encode())):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        session = Session(str(data["n"]), data["t"], int(data["i"]))
    except (ValueError, KeyError, TypeError):
        return None
    if session.token_sha256 is not None and not isinstance(session.token_sha256, str):
        return None
    if not 0 <= time.time() - session.issued <= MAX_AGE_SECONDS:
        return None
    return session


def from_request(request: Request, secret: bytes) -> Session | None:
    return decode(request.cookies.get(COOKIE), secret)


def set_cookie(response: Response, request: Request, session: Session, secret: bytes) -> None:
    response.set_cookie(
        COOKIE,
        encode(session, secret),
        max_age=MAX_AGE_SECONDS,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        COOKIE,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def csrf_ok(session: Session | None, presented: str | None, secret: bytes) -> bool:
    if session is None or not presented:
        return False
    return hmac.compare_digest(presented, session.csrf(secret))
