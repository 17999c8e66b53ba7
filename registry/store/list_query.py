"""The ``list`` query as people give it (``ListQuery``), compiled to a checked ``ListFilter``.

The CLI and ``Registry.list`` both build a ``ListQuery``. Every field is validated before
any query runs, and all problems are reported together (one line), so a typo in one
filter never yields a silently empty list.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from registry.errors import ArgumentError, InvalidNameError, RegistryError, combined_error
from registry.store.catalog.listing import STATUSES, ListFilter, digest_prefix, parse_sort
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


def _problems(check: Callable[..., object], *args: Any) -> list[InvalidNameError | ArgumentError]:
    try:
        check(*args)
    except (InvalidNameError, ArgumentError) as exc:
        return [exc]
    except RegistryError as exc:  # e.g. --data naming an empty directory
        return [ArgumentError(str(exc))]
    return []


@dataclass(frozen=True)
class ListQuery:
    """What ``list`` selects, as people give it; every given filter must hold.

    ``name`` is a glob; ``base`` a base NAME[@REVISION] or fingerprint sha256:HEX;
    ``tags`` maps keys to a value (or None: the key is present); ``data`` a training
    data digest sha256:HEX or a file/directory to digest; ``where`` conditions such
    as ``"accuracy@gsm8k>=0.9"`` on the latest evals (ANDed); ``status`` "active" or
    "yanked". ``sort``: name, version, created (newest first) or METRIC[@DATASET]
    (best first); ``reverse`` flips it; ``limit``: at most that many versions.
    """

    name: str | None = None
    base: str | None = None
    method: str | None = None
    alias: str | None = None
    tags: Mapping[str, str | None] | None = None
    data: str | Path | None = None
    where: Sequence[str | Condition] = ()
    status: str | None = None
    sort: str = "name"
    reverse: bool = False
    limit: int | None = None

    @classmethod
    def of(cls, query: ListQuery | None, fields: Mapping[str, Any]) -> ListQuery:
        """``query``, or the query made of keyword ``fields`` (not both); a ``TypeError``
        names unknown keywords, as a misspelt filter must not widen the list."""
        if query is not None:
            if not isinstance(query, ListQuery):
                raise TypeError(f"expected a ListQuery, not {type(query).__name__}")
            if fields:
                raise TypeError("pass a ListQuery or keyword filters, not both")
            return query
        unknown = sorted(set(fields) - {f.name for f in dataclass_fields(cls)})
        if unknown:
            known = ", ".join(f.name for f in dataclass_fields(cls))
            raise TypeError(f"unknown list filter(s) {', '.join(map(repr, unknown))}; use {known}")
        return cls(**fields)

    def compile(self) -> ListFilter:
        """The catalog's ``ListFilter``: conditions parsed, ``data`` digested, every field
        checked first, with every problem in one ``ArgumentError`` (``InvalidNameError``
        when each is a name)."""
        problems: list[InvalidNameError | ArgumentError] = []
        conditions: list[Condition] = []
        for item in self.where:
            if isinstance(item, Condition):
                conditions.append(item)
            else:
                problems += _problems(lambda text: conditions.append(parse_condition(text)), item)
        data_sha: list[str] = []
        data = self.data
        if data is not None:
            problems += _problems(
                lambda: data_sha.append(digest_prefix(_data_digest(data), "training data digest"))
            )
        if self.alias:
            problems += _problems(validate_alias, self.alias)
        if self.base and self.base.strip().lower().startswith("sha256:"):
            problems += _problems(digest_prefix, self.base, "base fingerprint")
        problems += _problems(parse_sort, self.sort)
        if self.status is not None and self.status not in STATUSES:
            problems.append(
                ArgumentError(f"unknown status {self.status!r}; use one of {', '.join(STATUSES)}")
            )
        if self.limit is not None and not 1 <= self.limit <= MAX_LIMIT:
            problems.append(
                ArgumentError(f"limit must be between 1 and {MAX_LIMIT}, not {self.limit}")
            )
        tag_pairs = tuple(sorted((self.tags or {}).items()))
        problems += [
            InvalidNameError(f"invalid tag key {key!r}")
            for key, _ in tag_pairs
            if not key or any(c.isspace() for c in key)
        ]
        if problems:
            raise combined_error(problems)
        return ListFilter(
            name_glob=self.name,
            base=self.base,
            method=self.method,
            status=self.status,
            alias=self.alias,
            tags=tag_pairs,
            data_sha256=data_sha[0] if data_sha else None,
            where=tuple(conditions),
            sort=self.sort,
            reverse=self.reverse,
            limit=self.limit,
        )
