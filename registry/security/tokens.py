"""Access tokens of the registry server: roles, namespaces, expiry, revocation.

A token is ``adp_`` + 43 characters of a 256-bit random secret. Only the sha256 of the
whole token is stored (a high-entropy secret needs no slow hash); it is looked up by
that hash and compared again in constant time. The secret is shown once, at creation.

Roles nest: reader (read, download) < writer (+ push, eval, sign) < maintainer (+ alias
moves, yank, rm) < admin (+ tokens, trusted keys, policy, gc). A token with a namespace
may only name ``NAMESPACE/...`` adapters.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError as SqlIntegrityError
from sqlmodel import col, select

from registry.errors import ArgumentError, ConflictError, NotFoundError
from registry.store.actor import current_actor
from registry.store.catalog.engine import read_session, write_session
from registry.store.catalog.history import add_event, utcnow
from registry.store.catalog.tables import ApiTokenRow
from registry.store.results import iso_utc

ROLES = ("reader", "writer", "maintainer", "admin")
PREFIX = "adp_"
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_NAMESPACE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,94}$")
_DURATION = re.compile(r"^(\d{1,18})([hdw])$")
# The furthest expiry accepted: a century keeps clear of year 9999, where datetimes end.
_MAX_AHEAD = timedelta(days=36_525)
_TOO_FAR = "--expires {text!r} is more than 100 years ahead; give a nearer date, or omit it"


@dataclass(frozen=True)
class TokenInfo:
    """A token as listed: everything but its secret."""

    name: str
    role: str
    namespace: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None

    def active(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC)
        return self.revoked_at is None and (
            self.expires_at is None or _aware(self.expires_at) > now
        )

    def allows(self, role: str) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)

    def covers(self, name: str) -> bool:
        """Whether a version name is inside this token's namespace (all are without one)."""
        return self.namespace is None or name.startswith(self.namespace + "/")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "role": self.role,
            "namespace": self.namespace,
            "created_at": iso_utc(self.created_at),
            "created_by": self.created_by,
            "expires_at": None if self.expires_at is None else iso_utc(self.expires_at),
            "revoked_at": None if self.revoked_at is None else iso_utc(self.revoked_at),
            "active": self.active(),
        }


@dataclass(frozen=True)
class NewToken:
    """A freshly created token: ``secret`` is shown this once and never stored."""

    info: TokenInfo
    secret: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.info.to_dict(), "token": self.secret}


@dataclass(frozen=True)
class TokenRevocation:
    """What a revoke did: ``changed`` is False when the token was already revoked (at
    ``token.revoked_at``), so nothing was written."""

    token: TokenInfo
    changed: bool

    def to_dict(self) -> dict[str, Any]:
        return {**self.token.to_dict(), "changed": self.changed}


def parse_expiry(text: str | None, now: datetime | None = None) -> datetime | None:
    """``30d``, ``12h``, ``2w`` from now, or an ISO 8601 date/time; None: never. At most
    ``_MAX_AHEAD`` ahead: further dates overflow what a datetime and the catalog hold."""
    if text is None or text == "never":
        return None
    now = now or datetime.now(UTC)
    match = _DURATION.match(text.strip())
    if match:
        amount, unit = int(match.group(1)), match.group(2)
        if amount == 0:
            raise ArgumentError("--expires must be in the future: give e.g. 30d, 12h or 2w")
        ahead = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}[unit]
        if amount > _MAX_AHEAD // ahead:
            raise ArgumentError(_TOO_FAR.format(text=text))
        return now + ahead * amount
    try:
        moment = _aware(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ArgumentError(
            f"--expires {text!r} is neither a duration (30d, 12h, 2w) nor an ISO date"
        ) from None
    if moment <= now:
        raise ArgumentError(f"--expires {text!r} is in the past; give a later date")
    if moment - now > _MAX_AHEAD:
        raise ArgumentError(_TOO_FAR.format(text=text))
    return moment


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _info(row: ApiTokenRow) -> TokenInfo:
    return TokenInfo(
        row.name,
        row.role,
        row.namespace,
        _aware(row.created_at),
        row.created_by,
        None if row.expires_at is None else _aware(row.expires_at),
        None if row.revoked_at is None else _aware(row.revoked_at),
    )


def create_token(
    engine: Engine,
    name: str,
    role: str,
    *,
    namespace: str | None = None,
    expires_at: datetime | None = None,
) -> NewToken:
    """Store a new token (hashed) and return it with its secret, with a ``token-create``
    audit event."""
    problems = []
    if not _NAME.match(name):
        problems.append(f"token name {name!r} must match [a-z0-9][a-z0-9._-]*, at most 64")
    if role not in ROLES:
        problems.append(f"role {role!r} is not one of {', '.join(ROLES)}")
    if namespace is not None and (not _NAMESPACE.match(namespace) or ".." in namespace):
        # A namespace is the NS of NS/name, so it follows a name's rules ('..' included).
        problems.append(
            f"namespace {namespace!r} must be the NS of names NS/name: [a-z0-9][a-z0-9._-]*, "
            "without '..', at most 95 characters"
        )
    if problems:
        raise ArgumentError("; ".join(problems))
    secret = PREFIX + secrets.token_urlsafe(32)
    actor = current_actor()
    row = ApiTokenRow(
        name=name,
        role=role,
        namespace=namespace,
        secret_sha256=_hash(secret),
        created_at=utcnow(),
        created_by=actor,
        expires_at=expires_at,
    )
    try:
        with write_session(engine) as session:
            session.add(row)
            add_event(session, actor, "token-create", None, None,
                      {"token": name, "role": role, "namespace": namespace})  # fmt: skip
            session.flush()
            info = _info(row)
    except SqlIntegrityError:
        raise ConflictError(
            f"a token named {name!r} exists; revoke it or choose another name"
        ) from None
    return NewToken(info, secret)


def list_tokens(engine: Engine) -> list[TokenInfo]:
    with read_session(engine) as session:
        rows = session.exec(select(ApiTokenRow).order_by(col(ApiTokenRow.name))).all()
        return [_info(row) for row in rows]


def revoke_token(engine: Engine, name: str) -> TokenRevocation:
    """Revoke a token at once, with a ``token-revoke`` audit event.

    Revoking a revoked token succeeds and says so (``changed`` False), writing nothing:
    the state asked for holds, so a script that revokes on every run need not first ask
    whether it did; the first revocation's time and audit event stay the only ones."""
    with write_session(engine) as session:
        row = session.exec(select(ApiTokenRow).where(col(ApiTokenRow.name) == name)).first()
        if row is None:
            raise NotFoundError(f"no token named {name!r}; see `adapters token list`")
        changed = row.revoked_at is None
        if changed:
            row.revoked_at = utcnow()
            session.add(row)
            add_event(session, current_actor(), "token-revoke", None, None, {"token": name})
        session.flush()
        return TokenRevocation(_info(row), changed)


def authenticate(engine: Engine, presented: str) -> TokenInfo | None:
    """The active token whose secret is ``presented``; None for an unknown, expired or
    revoked one (the caller says only that it was refused)."""
    if not presented.startswith(PREFIX) or len(presented) > 128:
        return None
    return authenticate_digest(engine, _hash(presented))


def secret_digest(presented: str) -> str:
    """What is stored of a token: the hex sha256 of the whole token."""
    return _hash(presented)


def authenticate_digest(engine: Engine, digest: str) -> TokenInfo | None:
    """The active token whose secret hashes to ``digest`` (a web session keeps the hash,
    never the secret); None for an unknown, expired or revoked one."""
    if len(digest) != 64:
        return None
    with read_session(engine) as session:
        row = session.exec(
            select(ApiTokenRow).where(col(ApiTokenRow.secret_sha256) == digest)
        ).first()
        if row is None or not hmac.compare_digest(row.secret_sha256, digest):
            return None
        info = _info(row)
    return info if info.active() else None
