"""Typed results to JSON and back, so that the server and the remote client exchange the
library's own frozen dataclasses (``AdapterVersion``, ``AliasChange``...) unchanged.

Encoding walks dataclass fields; decoding follows the field annotations (nested
dataclasses, tuples, lists, dicts, unions with None, datetimes, paths).
"""

from __future__ import annotations

import base64
import dataclasses
import types
import typing
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, TypeVar, Union

from registry.errors import ArgumentError

T = TypeVar("T")


def encode(value: Any) -> Any:
    """A JSON-ready form of a dataclass (or of plain values holding them)."""
    # Exact types first: a listing encodes a thousand versions, and the generic checks
    # below (is_dataclass, fields(), isinstance chains) cost more than the values.
    kind: type = type(value)
    if kind in _PLAIN:
        return value
    if kind is list or kind is tuple:
        return [encode(v) for v in value]
    if kind is dict:
        return {str(k): encode(v) for k, v in value.items()}
    names = _field_names(kind)
    if names is not None:
        return {name: encode(getattr(value, name)) for name in names}
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [encode(v) for v in value]
    if isinstance(value, Mapping):  # a dict, or a read-only view (a fingerprint's tensors)
        return {str(k): encode(v) for k, v in value.items()}
    if isinstance(value, bytes):  # a fingerprint's sampled bytes
        return base64.b64encode(value).decode("ascii")
    return value


_PLAIN = frozenset({str, int, float, bool, type(None)})


@cache
def _field_names(kind: type) -> tuple[str, ...] | None:
    if not dataclasses.is_dataclass(kind):
        return None
    return tuple(f.name for f in dataclasses.fields(kind))


def decode(kind: type[T], data: Any) -> T:
    """The ``kind`` instance that ``encode`` turned into ``data``; ``ArgumentError`` when
    ``data`` does not have that shape."""
    try:
        return typing.cast(T, _decode(kind, data))
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        label = getattr(kind, "__name__", kind)
        raise ArgumentError(f"a {label} in the wrong shape: {exc}") from None


@cache
def _hints(kind: type) -> dict[str, Any]:
    # Names some results import only for type checking.
    from registry.bases.fingerprint import Fingerprint

    return typing.get_type_hints(kind, localns={"Fingerprint": Fingerprint})


def _decode(kind: Any, data: Any) -> Any:
    origin = typing.get_origin(kind)
    if kind is Any or kind is object:
        return data
    if origin in (Union, types.UnionType):
        options = typing.get_args(kind)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(option, data)
            except (TypeError, ValueError, KeyError, AttributeError) as exc:
                errors.append(str(exc))
        raise TypeError("; ".join(errors))
    if origin is typing.Literal:
        if data not in typing.get_args(kind):
            raise ValueError(f"{data!r} is not one of {typing.get_args(kind)}")
        return data
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(data, list):
            raise TypeError(f"expected a list, got {type(data).__name__}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_decode(args[0], v) for v in data)
        if len(args) != len(data):
            raise ValueError(f"expected {len(args)} items, got {len(data)}")
        return tuple(_decode(a, v) for a, v in zip(args, data, strict=True))
    if origin is list:
        (item,) = typing.get_args(kind) or (Any,)
        if not isinstance(data, list):
            raise TypeError(f"expected a list, got {type(data).__name__}")
        return [_decode(item, v) for v in data]
    if origin in (dict, Mapping) or kind is dict:
        _key, item = typing.get_args(kind) or (str, Any)
        if not isinstance(data, dict):
            raise TypeError(f"expected an object, got {type(data).__name__}")
        return {k: _decode(item, v) for k, v in data.items()}
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(data, dict):
            raise TypeError(f"expected an object for {kind.__name__}")
        hints = _hints(kind)
        values = {
            f.name: _decode(hints[f.name], data[f.name])
            for f in dataclasses.fields(kind)
            if f.init and f.name in data
        }
        return kind(**values)
    if kind is datetime:
        if not isinstance(data, str):
            raise TypeError("expected an ISO 8601 time")
        return datetime.fromisoformat(data)
    if kind is Path:
        return Path(data)
    if kind is bytes:
        if not isinstance(data, str):
            raise TypeError("expected base64 text")
        return base64.b64decode(data, validate=True)
    if kind is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise TypeError(f"expected a number, got {data!r}")
        return float(data)
    if kind in (int, str, bool):
        if type(data) is not kind:
            raise TypeError(f"expected {kind.__name__}, got {data!r}")
        return data
    raise TypeError(f"cannot decode {kind!r}")
