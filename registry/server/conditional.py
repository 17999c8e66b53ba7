"""``If-None-Match`` as RFC 9110 (13.1.2) reads it: the weak comparison, ``*``, lists."""

from __future__ import annotations


def none_match(header: str | None, etag: str) -> bool:
    """Whether a GET with this ``If-None-Match`` may be answered 304 for ``etag``:
    ``*`` (the resource exists) or any entity-tag of the list equal to ``etag`` once
    ``W/`` is set aside on both sides (a weak comparison, as the RFC asks for GET)."""
    if header is None:
        return False
    if header.strip() == "*":
        return True
    wanted = _opaque(etag)
    return any(_opaque(tag.strip()) == wanted for tag in header.split(","))


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag
