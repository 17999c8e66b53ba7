"""JSON Schemas (draft 2020-12) for adapter configs, with a small loader and validator.

The schema files live next to this module and ship as package data. ``validate`` reports
every error at once, one readable line each, prefixed with the JSON path of the offending
value (``$.r: 'eight' is not of type 'integer'``).

This package imports nothing from ``registry``: the dependency direction is
``cli -> registry -> schemas``.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError as _SchemaError

__all__ = ["available_schemas", "format_path", "load_schema", "validate"]

_SUFFIX = ".schema.json"
# Schema names are plain identifiers: no path tricks through the loader.
_NAME = re.compile(r"[a-z0-9_]+")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_MESSAGE = 300
_OUTCOMES_KEPT = 1024
_LARGEST_KEPT = 256 * 1024  # real configs are a few kB
_outcomes: dict[tuple[str, str], tuple[str, ...]] = {}


def available_schemas() -> list[str]:
    """Names of the bundled schemas, e.g. ``["adapterhub_config", "peft_config"]``."""
    names = (
        entry.name[: -len(_SUFFIX)]
        for entry in resources.files(__name__).iterdir()
        if entry.name.endswith(_SUFFIX)
    )
    return sorted(names)


def load_schema(name: str) -> dict[str, Any]:
    """The schema called ``name`` (with or without the ``.schema.json`` suffix), as a new dict."""
    return copy.deepcopy(_load(_normalise(name)))


def validate(instance: object, name: str) -> list[str]:
    """Every way ``instance`` breaks schema ``name``, one line each, sorted; empty when valid."""
    stem = _normalise(name)
    try:
        # The outcome depends only on the JSON text: successive checkpoints of one run
        # and pushes from one recipe share their configs, so keep it by that text.
        key = (stem, json.dumps(instance, sort_keys=True, allow_nan=True))
    except (TypeError, ValueError, RecursionError):
        key = None
    if key is not None and len(key[1]) > _LARGEST_KEPT:
        key = None  # configs may be 16 MiB: 1024 such keys would be gigabytes
    if key is not None and key in _outcomes:
        return list(_outcomes[key])
    validator = _validator(stem)
    errors: Iterable[_SchemaError] = validator.iter_errors(instance)
    lines = sorted({_describe(error) for error in errors})
    if key is not None:
        if len(_outcomes) >= _OUTCOMES_KEPT:
            _outcomes.clear()
        _outcomes[key] = tuple(lines)
    return lines


def format_path(parts: Iterable[str | int]) -> str:
    """A JSONPath-like rendering of ``parts``: ``$.config.leave_out[2]``, ``$['odd key']``."""
    out = "$"
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.fullmatch(part):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


def _normalise(name: str) -> str:
    stem = name[: -len(_SUFFIX)] if name.endswith(_SUFFIX) else name
    if not _NAME.fullmatch(stem):
        raise ValueError(f"invalid schema name {name!r}: expected lowercase letters, digits, '_'")
    return stem


@cache
def _load(stem: str) -> dict[str, Any]:
    resource = resources.files(__name__).joinpath(stem + _SUFFIX)
    if not resource.is_file():
        known = ", ".join(available_schemas())
        raise ValueError(f"no schema named {stem!r}; available: {known}")
    schema = json.loads(resource.read_text(encoding="utf-8"))
    if not isinstance(schema, dict):
        raise ValueError(f"schema {stem!r} is not a JSON object")
    return schema


def _is_whole_number(_checker: object, instance: object) -> bool:
    # JSON Schema counts 4.0 as an integer; PEFT passes it on to torch, which refuses a
    # float where it needs a size, so an integer here is an int in the JSON text.
    return isinstance(instance, int) and not isinstance(instance, bool)


_STRICT_TYPES = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_whole_number)
_Validator = validators.extend(Draft202012Validator, type_checker=_STRICT_TYPES)


@cache
def _validator(stem: str) -> Draft202012Validator:
    schema = _load(stem)
    Draft202012Validator.check_schema(schema)
    validator: Draft202012Validator = _Validator(schema)
    return validator


def _describe(error: _SchemaError) -> str:
    message = " ".join(error.message.split())
    if len(message) > _MAX_MESSAGE:
        message = message[: _MAX_MESSAGE - 3] + "..."
    parts = [p if isinstance(p, int) else str(p) for p in error.absolute_path]
    return f"{format_path(parts)}: {message}"
