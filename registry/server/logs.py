"""The server's log on stderr, one JSON object a line: each request's access line (made
by ``app.AccessLog``), the start-up line (``run``), and every warning or error of the
server or of uvicorn, with its
traceback as one string field, so that a log collector never splits a record. Each line
starts with its time (UTC)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

ACCESS = "registry.server.access"
# Loggers whose records go out as JSON: the server's own, and uvicorn's (its errors, such
# as a request cut off at the graceful timeout). uvicorn's access lines stay off.
_EVENTS = ("registry.server", "uvicorn")


def configure_logging(*, uvicorn_too: bool = True) -> None:
    """Send the access log and the server's warnings and errors to stderr as JSON lines
    (idempotent). ``uvicorn_too=False`` leaves uvicorn's loggers to whoever runs it."""
    _attach(logging.getLogger(ACCESS), _AccessFormatter(), logging.INFO)
    # The server's own at INFO: a stop and its end are logged so.
    _attach(logging.getLogger(_EVENTS[0]), _EventFormatter(), logging.INFO)
    if uvicorn_too:
        _attach(logging.getLogger(_EVENTS[1]), _EventFormatter(), logging.WARNING)


def _attach(logger: logging.Logger, formatter: logging.Formatter, level: int) -> None:
    if any(getattr(h, "_adapters_json", False) for h in logger.handlers):
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler._adapters_json = True  # type: ignore[attr-defined]
    for old in list(logger.handlers):  # uvicorn's own plain-text handlers
        logger.removeHandler(old)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False


def _time(record: logging.LogRecord) -> str:
    return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


class _AccessFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if message.startswith("{"):  # the middleware's object: the time put in front
            return f'{{"time": "{_time(record)}", {message[1:]}'
        return _EventFormatter().format(record)


class _EventFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        event: dict[str, object] = {
            "time": _time(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Structured fields given as ``extra={"fields": {...}}`` (the start-up line's).
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            event.update({k: v for k, v in fields.items() if k not in event})
        if record.exc_info and record.exc_info[1] is not None:
            event["error"] = type(record.exc_info[1]).__name__
            event["traceback"] = self.formatException(record.exc_info)
        return json.dumps(event)
