"""Keyset paging of lists: an opaque ``cursor`` names the last item sent by its position
in the list's order, and the next page starts after that position. Unlike an offset, a
version (or event) inserted before the cursor while a client pages neither repeats nor
hides an item: items are never counted, only compared.

The position of a version is its sort key made total by the name and the PEP 440 version
(unique together); the order served is the order of these keys, so ties of ``created`` or
of a metric are broken the same way on every page.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from packaging.version import InvalidVersion, Version

from registry.errors import ArgumentError
from registry.store.catalog.listing import parse_sort
from registry.store.catalog.version_order import parsed_version
from registry.store.results import EvalScore

T = TypeVar("T")
# What each part of a cursor may hold (bool is not a number here).
_KINDS: dict[str, tuple[type, ...]] = {"v": (str,), "b": (bool,), "n": (int, float), "s": (str,)}
_BAD = "cursor is not one this server gave out for this list; start again without it"


class Positioned(Protocol):
    """What a version's position is made of: an ``AdapterVersion``, or a kept list entry."""

    @property
    def name(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def evals(self) -> tuple[EvalScore, ...]: ...


def _latest(version: Positioned, metric: str, dataset: str | None) -> float | None:
    value = None
    for score in version.evals:  # in recording order: the last one wins
        if score.metric == metric and (dataset is None or score.dataset == dataset):
            value = score.value
    return value


def version_positions(
    versions: Sequence[Positioned], sort: str, reverse: bool
) -> tuple[list[tuple[Any, ...]], bool]:
    """Each version's position key, and whether the list runs from the highest key down
    (the orders of ``registry.store.catalog.listing``)."""
    order = parse_sort(sort)
    keys: list[tuple[Any, ...]] = []
    for v in versions:
        if order.kind == "name":
            keys.append((v.name, parsed_version(v.version)))
        elif order.kind == "version":
            keys.append((parsed_version(v.version), v.name))
        elif order.kind == "created":
            stamp = v.created_at.timestamp()
            # Newest first unless reversed; names break ties upwards either way.
            keys.append((stamp if reverse else -stamp, v.name, parsed_version(v.version)))
        else:
            assert order.metric is not None
            value = _latest(v, order.metric, order.dataset)
            # Best first (highest, or lowest when reversed); versions without it last.
            signed = 0.0 if value is None else (value if reverse else -value)
            keys.append((value is None, signed, v.name, parsed_version(v.version)))
    return keys, order.kind in ("name", "version") and reverse


def page_after(
    items: Sequence[T],
    keys: Sequence[tuple[Any, ...]],
    descending: bool,
    cursor: str | None,
    size: int,
) -> tuple[list[T], str | None]:
    """Sort ``items`` by ``keys``, take ``size`` of them after ``cursor``'s position, and
    the cursor of the next page (None: this was the last)."""
    order = sorted(range(len(items)), key=lambda i: keys[i], reverse=descending)
    start = 0
    if cursor is not None:
        after = decode_cursor(cursor)
        try:
            start = next(
                (n for n, i in enumerate(order)
                 if (keys[i] < after if descending else keys[i] > after)),
                len(order),
            )  # fmt: skip
        except TypeError:  # a cursor of another sort order
            raise ArgumentError(_BAD) from None
    chosen = order[start : start + size]
    following = None
    if chosen and start + size < len(order):
        following = encode_cursor(keys[chosen[-1]])
    return [items[i] for i in chosen], following


def encode_cursor(key: Sequence[Any]) -> str:
    parts: list[list[Any]] = []
    for part in key:
        if isinstance(part, Version):
            parts.append(["v", str(part)])
        elif isinstance(part, bool):
            parts.append(["b", part])
        elif isinstance(part, int | float):
            parts.append(["n", part])
        elif isinstance(part, datetime):
            parts.append(["n", part.timestamp()])
        else:
            parts.append(["s", str(part)])
    raw = json.dumps(parts, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[Any, ...]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        parts = json.loads(raw)
        if not isinstance(parts, list) or not parts or len(parts) > 8:
            raise ValueError(cursor)
        key: list[Any] = []
        for kind, value in parts:
            if kind not in _KINDS or type(value) not in _KINDS[kind]:
                raise ValueError(cursor)
            key.append(Version(value) if kind == "v" else value)
        return tuple(key)
    except (ValueError, TypeError, InvalidVersion, UnicodeDecodeError):
        raise ArgumentError(_BAD) from None


# -- the other lists ----------------------------------------------------------------------
#
# Their cursors carry the list they belong to and a digest of its filters (and the
# caller's namespace), so a cursor of another list, or of the same list filtered another
# way, is refused rather than read as a position it never was. A cursor is not signed: a
# well-formed one made by hand is only a position to start after, and every page is
# filtered to what the caller may see before it is cut.

Key = tuple[str | int, ...]


def scope_digest(kind: str, scope: Sequence[str | None]) -> str:
    raw = json.dumps([kind, *scope], separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def make_cursor(kind: str, scope: Sequence[str | None], key: Key) -> str:
    body = {"l": kind, "s": scope_digest(kind, scope), "k": list(key)}
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def read_cursor(
    cursor: str, kind: str, scope: Sequence[str | None], shape: tuple[type, ...]
) -> Key:
    """The position in ``cursor``, which must be one made for this list and these filters,
    holding values of the types in ``shape``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ArgumentError(_BAD) from None
    if (
        not isinstance(body, dict)
        or set(body) != {"l", "s", "k"}
        or body["l"] != kind
        or body["s"] != scope_digest(kind, scope)
        or not isinstance(body["k"], list)
        or len(body["k"]) != len(shape)
        or any(type(v) is not t for v, t in zip(body["k"], shape, strict=True))
        # Ids go to the database as integers: one past 64 bits fails there, not here.
        or any(type(v) is int and not -(2**63) <= v < 2**63 for v in body["k"])
    ):
        raise ArgumentError(_BAD)
    return tuple(body["k"])


def keyed_page(
    items: Sequence[T],
    key_of: Callable[[T], Key],
    *,
    kind: str,
    scope: Sequence[str | None],
    cursor: str | None,
    size: int,
) -> tuple[list[T], str | None]:
    """``size`` items after ``cursor``'s position in the order of their unique keys, and
    the cursor of the next page (None: this was the last)."""
    keyed = sorted(((key_of(item), item) for item in items), key=lambda pair: pair[0])
    start = 0
    if cursor is not None and keyed:
        shape = tuple(type(v) for v in keyed[0][0])
        after = read_cursor(cursor, kind, scope, shape)
        start = next((n for n, (k, _) in enumerate(keyed) if k > after), len(keyed))
    elif cursor is not None:
        # An empty list has no shape to check against; the list and filters still must match.
        read_cursor(cursor, kind, scope, tuple(_shape_of(cursor)))
    chosen = keyed[start : start + size]
    following = None
    if chosen and start + size < len(keyed):
        following = make_cursor(kind, scope, chosen[-1][0])
    return [item for _, item in chosen], following


def _shape_of(cursor: str) -> list[type]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)["k"]
        return [type(v) if type(v) in (str, int) else object for v in key]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise ArgumentError(_BAD) from None
