"""Limits on untrusted JSON beyond what the parser enforces.

``json.loads`` accepts nesting up to the interpreter's recursion limit and strings holding
unpaired UTF-16 surrogates (``"\\ud800"``). Both break later stages instead of the parse: a
deep document overflows the stack in ``copy.deepcopy`` or the schema validator, and a lone
surrogate cannot be encoded as UTF-8, so the manifest digest cannot be computed. Both are
refused here, right after parsing, with a sentence naming where the problem is. Numbers are
bounded while parsing: Python converts thousands of digits (slowly) and then refuses to print
them, so a huge integer would turn a later error message into a crash, and ``1e999`` parses
as infinity, which canonical JSON cannot hold.
"""

from __future__ import annotations

import math
from typing import Any

from registry.formats.text import show

# Real configs nest three or four levels deep (rank_pattern, the AdapterHub "config").
MAX_JSON_DEPTH = 64
_MAX_REPR = 80
# Enough for every signed and unsigned 64-bit integer.
MAX_INT_DIGITS = 20


# A value on the walk: (value, depth, parent node, key in the parent). Paths are only
# rendered for the rare value that has a problem.
_Node = tuple[Any, int, "_Node | None", "str | int | None"]


def json_problems(document: Any, what: str) -> list[str]:
    """Why ``document`` (a parsed JSON value) cannot be used: too deep, or invalid Unicode.

    Walks the value without recursion, so it is safe on any document ``json.loads`` returned.
    """
    problems: list[str] = []
    stack: list[_Node] = [(document, 1, None, None)]
    while stack and len(problems) < 10:
        node = stack.pop()
        value, depth = node[0], node[1]
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                problems.append(f"{what}: {too_deep()} at {_path(node)}")
                break
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(key, str) and _has_surrogate(key):
                    where = _path(node)
                    problems.append(f"{what}: key {show(key)} at {where} is not valid Unicode")
                if isinstance(item, dict | list | str):
                    stack.append((item, depth + 1, node, key))
        elif isinstance(value, str) and _has_surrogate(value):
            problems.append(
                f"{what}: the string at {_path(node)} holds an unpaired surrogate; "
                "not valid Unicode"
            )
    return problems


class JsonLimitError(ValueError):
    """Valid JSON beyond what the registry accepts (raised while parsing)."""


def bounded_int(text: str) -> int:
    """``parse_int`` hook for ``json.loads``: integers of at most ``MAX_INT_DIGITS`` digits."""
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise JsonLimitError(f"an integer of {digits} digits is out of range")
    return int(text)


def finite_float(text: str) -> float:
    """``parse_float`` hook for ``json.loads``: ``1e999`` would silently become infinity."""
    value = float(text)
    if math.isinf(value):
        raise JsonLimitError(f"the number {text[:30]} is out of range for a float")
    return value


def too_deep() -> str:
    """The problem for a document ``json.loads`` could not even parse for its depth."""
    return f"nested more than {MAX_JSON_DEPTH} levels deep"


def brief(value: object) -> str:
    """A short ``repr`` of an untrusted value for a one-line message."""
    if isinstance(value, list | dict) and len(value) > 8:
        kind = "list" if isinstance(value, list) else "object"
        return f"<{kind} of {len(value)} items>"
    try:
        text = repr(value)
    except RecursionError:
        return f"<deeply nested {type(value).__name__}>"
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _path(node: _Node) -> str:
    parts: list[str] = []
    current: _Node | None = node
    while current is not None and current[2] is not None:
        key = current[3]
        parts.append(f"[{key}]" if isinstance(key, int) else f".{_short(str(key))}")
        current = current[2]
    path = "$" + "".join(reversed(parts))
    return path if len(path) <= 60 else path[:40] + "..." + path[-17:]


def _short(key: str) -> str:
    shown = show(key)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
