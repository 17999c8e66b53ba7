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


def json_problems(document: Any, what: str) -> list[str]:
    """Why ``document`` (a parsed JSON value) cannot be used: too deep, or invalid Unicode.

    Walks the value without recursion, so it is safe on any document ``json.loads`` returned.
    """
    problems: list[str] = []
    stack: list[tuple[Any, int, str]] = [(document, 1, "$")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                problems.append(f"{what}: {too_deep()} at {_trim(path)}")
                break
            if isinstance(value, dict):
                for key, item in value.items():
                    if _has_surrogate(key):
                        problems.append(f"{what}: key {show(key)} at {path} is not valid Unicode")
                    stack.append((item, depth + 1, f"{path}.{_short(key)}"))
            else:
                stack.extend((item, depth + 1, f"{path}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, str) and _has_surrogate(value):
            problems.append(
                f"{what}: the string at {path} holds an unpaired surrogate; not valid Unicode"
            )
        if len(problems) >= 10:
            break
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


def _trim(path: str) -> str:
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
