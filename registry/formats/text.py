"""Rendering untrusted names (tensor keys, file names) inside one-line messages."""

from __future__ import annotations

import json
from collections.abc import Sequence

_MAX_SHOWN = 200


def show(name: str) -> str:
    """``name`` as is when it is plain printable text, else JSON-quoted; long names shortened."""
    shown = name if name.isprintable() and name.strip() == name and name else json.dumps(name)
    if len(shown) > _MAX_SHOWN:
        shown = shown[: _MAX_SHOWN - 3] + "..."
    return shown


def show_shape(shape: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def join_problems(problems: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` problems on one line, saying how many more there are."""
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return "; ".join(problems[:shown]) + more
