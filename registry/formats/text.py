"""Rendering untrusted names (tensor keys, file names) inside one-line messages."""

from __future__ import annotations

import json

_MAX_SHOWN = 200


def show(name: str) -> str:
    """``name`` as is when it is plain printable text, else JSON-quoted; long names shortened."""
    shown = name if name.isprintable() and name.strip() == name and name else json.dumps(name)
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    return shown


def show_shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"
