"""Query parameters as the API and the UI read them: text of bounded length without NUL
bytes, and whole numbers written in ASCII digits."""

from __future__ import annotations

from starlette.requests import Request

from registry.errors import ArgumentError

_MAX_TEXT = 1024
_MAX_DIGITS = 9  # below 2**31, so every backend's integer columns take it


def query_text(request: Request, key: str, required: bool = True) -> str | None:
    value = request.query_params.get(key)
    if value is None and required:
        raise ArgumentError(f"missing query parameter {key!r}")
    if value is not None and ("\x00" in value or len(value) > _MAX_TEXT):
        raise ArgumentError(f"query parameter {key!r} holds a NUL byte or is too long")
    return value


def is_whole_number(text: str) -> bool:
    # isascii: isdigit() also accepts digits such as '²' that int() refuses.
    return text.isascii() and text.isdigit() and len(text) <= _MAX_DIGITS
