"""Turning ``list`` arguments from people into a checked ``ListFilter``.

Every argument is validated before any query runs, and all problems are reported
together (one line), so a typo in one filter never yields a silently empty list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from registry.errors import ArgumentError, InvalidNameError, RegistryError, combined_error
from registry.store.catalog.catalog import ListFilter
from registry.store.catalog.listing import STATUSES, digest_prefix, parse_sort
from registry.store.conditions import Condition, parse_condition
from registry.store.hashing import data_digest
from registry.store.refs import validate_alias

MAX_LIMIT = 1_000_000


def _data_digest(data: str | Path) -> str:
    """``sha256:HEX`` as given, or the digest of an existing file or directory."""
    text = str(data).strip()
    if text.lower().startswith("sha256:"):
        return text
    path = Path(data)
    if not path.exists():
        raise ArgumentError(
            f"--data {text!r} is neither a digest sha256:HEX nor an existing file or directory"
        )
    return "sha256:" + data_digest(path).sha256


def _problems(
    check: Callable[..., object], *args: Any
) -> list[InvalidNameError | ArgumentError]:
    try:
        check(*args)
    except (InvalidNameError, ArgumentError) as exc:
        return [exc]
    except RegistryError as exc:  # e.g. --data naming an empty directory
        return [ArgumentError(str(exc))]
    return []


def list_filter(
    *,
    name: str | None = None,
    base: str | None = None,
    method: str | None = None,
    alias: str | None = None,
    tags: Mapping[str, str | None] | None = None,
    data: str | Path | None = None,
    where: Sequence[str | Condition] = (),
    status: str | None = None,
    sort: str = "name",
    reverse: bool = False,
    limit: int | None = None,
) -> ListFilter:
    problems: list[InvalidNameError | ArgumentError] = []
    conditions: list[Condition] = []
    for item in where:
        if isinstance(item, Condition):
            conditions.append(item)
        else:
            problems += _problems(lambda text: conditions.append(parse_condition(text)), item)
    data_sha: list[str] = []
    if data is not None:
        problems += _problems(
            lambda: data_sha.append(digest_prefix(_data_digest(data), "training data digest"))
        )
    if alias:
        problems += _problems(validate_alias, alias)
    if base and base.strip().lower().startswith("sha256:"):
        problems += _problems(digest_prefix, base, "base fingerprint")
    problems += _problems(parse_sort, sort)
    if status is not None and status not in STATUSES:
        problems.append(
            ArgumentError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
        )
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        problems.append(ArgumentError(f"limit must be between 1 and {MAX_LIMIT}, not {limit}"))
    tag_pairs = tuple(sorted((tags or {}).items()))
    problems += [
        InvalidNameError(f"invalid tag key {key!r}")
        for key, _ in tag_pairs
        if not key or any(c.isspace() for c in key)
    ]
    if problems:
        raise combined_error(problems)
    return ListFilter(
        name_glob=name,
        base=base,
        method=method,
        status=status,
        alias=alias,
        tags=tag_pairs,
        data_sha256=data_sha[0] if data_sha else None,
        where=tuple(conditions),
        sort=sort,
        reverse=reverse,
        limit=limit,
    )
