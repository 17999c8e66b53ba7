"""Who is making a change, for the audit log."""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ACTOR_ENV = "ADAPTERS_ACTOR"

# Set per request by the server (the token's name); a context variable, not the
# environment, because one server process serves many actors at once.
_ACTING_AS: ContextVar[str | None] = ContextVar("adapters_actor", default=None)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    """Record changes made inside the block as done by ``actor``."""
    token = _ACTING_AS.set(actor[:256])
    try:
        yield
    finally:
        _ACTING_AS.reset(token)


def current_actor() -> str:
    acting = _ACTING_AS.get()
    if acting is not None:
        return acting
    explicit = os.environ.get(ACTOR_ENV, "").strip()
    if explicit:
        return explicit[:256]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"[:256]
