"""Who is making a change, for the audit log."""

from __future__ import annotations

import getpass
import os
import socket

ACTOR_ENV = "ADAPTERS_ACTOR"


def current_actor() -> str:
    explicit = os.environ.get(ACTOR_ENV, "").strip()
    if explicit:
        return explicit[:256]
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"[:256]
