"""Why an action was refused, carried from the POST to the version page it redirects to
(Post/Redirect/Get), so that reloading the page shows the refusal again instead of
sending the form again.

The refusal travels in the redirect's query as a signed value: the status to answer
with, the error or the gate report, bound to the visitor's session nonce and the
version's reference, and good for ``MAX_AGE_SECONDS``. Anything else (forged, another
session's, stale, for another version) is ignored and the page shows no refusal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass

from registry.check import Check
from registry.lifecycle.results import GateReport
from registry.server.ui.session import Session

PARAM = "refused"
MAX_AGE_SECONDS = 600
# A report's size stays within what any browser and proxy keep in a URL.
MAX_CHECKS = 20
MAX_TEXT = 300


@dataclass(frozen=True)
class Refusal:
    """An action refused (nothing changed): the status to show it with, and why."""

    status: int
    error: str | None = None
    gate: GateReport | None = None


def _sign(secret: bytes, body: str) -> str:
    mac = hmac.new(secret, b"refused:" + body.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def encode(refusal: Refusal, ref: str, session: Session, secret: bytes) -> str:
    gate = refusal.gate
    data = {
        "n": session.nonce,
        "r": ref,
        "i": int(time.time()),
        "s": refusal.status,
        "e": None if refusal.error is None else refusal.error[:MAX_TEXT],
        "g": None
        if gate is None
        else [
            gate.ref,
            gate.alias,
            [[c.name, c.status, c.detail[:MAX_TEXT]] for c in gate.checks[:MAX_CHECKS]],
        ],
    }
    raw = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    body = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    return body + "." + _sign(secret, body)


def decode(value: str, ref: str, session: Session, secret: bytes) -> Refusal | None:
    """The refusal in ``value`` if this session made it for ``ref`` lately, else None."""
    body, _, signature = value.partition(".")
    if not body or not hmac.compare_digest(signature, _sign(secret, body)):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        if data["n"] != session.nonce or data["r"] != ref:
            return None
        if not 0 <= time.time() - int(data["i"]) <= MAX_AGE_SECONDS:
            return None
        gate = None
        if data["g"] is not None:
            gate_ref, alias, checks = data["g"]
            gate = GateReport(gate_ref, alias, tuple(Check(*c) for c in checks))
        return Refusal(int(data["s"]), data["e"], gate)
    except (ValueError, KeyError, TypeError):
        return None
