"""Errors as JSON: each ``RegistryError`` class has a stable code and an HTTP status.

Body: ``{"error": {"code": "not_found", "message": "one line"}}``, plus ``unmet`` for a
gate and ``subject``/``problems`` for a validation error. The remote client maps the code
back to the same exception class (the table is in ``registry.remote.wire``).
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.responses import JSONResponse

from registry import errors
from registry.remote.wire import ERROR_CODES

_log = logging.getLogger("registry.server")
# Failures of the server's own catalog or home: what they say names its database URL (user,
# host, database), its paths and its settings, which are none of a client's business (the
# answer reaches callers without a valid token too). The client gets the code and a line
# without them; the log has the whole message.
_SERVER_SIDE = {
    errors.CatalogError: "the server cannot reach its catalog; try again later",
    errors.HomeError: "the server cannot use its registry home; try again later",
}


class HttpProblem(Exception):
    """A refusal of the HTTP layer itself (auth, limits, routing)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def problem(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status)


def from_registry_error(exc: errors.RegistryError) -> JSONResponse:
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.GateError):
        extra["unmet"] = list(exc.unmet)
    if isinstance(exc, errors.ValidationError):
        extra["subject"] = exc.subject
        extra["problems"] = list(exc.problems)
    for kind, code, status in ERROR_CODES:
        if isinstance(exc, kind):
            message = _one_line(str(exc))
            for server_side, shown in _SERVER_SIDE.items():
                if isinstance(exc, server_side):
                    _log.warning("%s: %s", code, message)
                    message = shown
            return problem(status, code, message, **extra)
    raise AssertionError("unreachable: RegistryError is the last entry")


def _one_line(message: str) -> str:
    return " ".join(message.split())[:2000]


def naming(exc: errors.RegistryError, path: str, shown: str) -> errors.RegistryError:
    """``exc`` with the server's own ``path`` (a push's staging directory, of no use to
    the client and none of its business) replaced by ``shown`` in what it says."""
    if isinstance(exc, errors.ValidationError):
        exc.subject = exc.subject.replace(path, shown)
        exc.problems = [problem.replace(path, shown) for problem in exc.problems]
    if exc.args and isinstance(exc.args[0], str) and path in exc.args[0]:
        exc.args = (exc.args[0].replace(path, shown), *exc.args[1:])
    return exc
