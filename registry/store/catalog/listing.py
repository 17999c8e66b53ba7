"""The ``list`` query: filters and sort orders compiled to one indexed SQL statement.

Listing runs in two steps. The first selects only ids (plus what the order needs)
of the matching versions, so filters and ``LIMIT`` run in the database on indexes;
the second loads the chosen rows with their annotations (``version_rows``). PEP 440
order cannot be expressed in SQL, so ``version`` order sorts the small id tuples in
Python before the limit is applied. ``name`` order with a limit runs in SQL on the
``(name, version_key)`` index (``version_key`` is PEP 440 order as a byte-ordered
string), so a page of a huge catalog reads a page of rows.

The statements are plain SQL text with named parameters, run by whatever executes
them: SQLAlchemy on every backend (``Catalog``), or the standard library's
``sqlite3`` for commands that only read a SQLite catalog (``sqlite_reader``), which
then never import SQLAlchemy. This module is the one place the query is written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from registry.errors import ArgumentError, InvalidNameError
from registry.store.catalog.version_order import parsed_version
from registry.store.catalog.version_rows import (
    VERSION_COLUMNS,
    Execute,
    Record,
    build,
    load_ids,
    load_rows,
    read_records,
    rows_of_ids,
)
from registry.store.conditions import Condition, validate_dataset, validate_metric

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from registry.store.results import AdapterVersion

STATUSES = ("active", "yanked")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{12,64}$")
_V = "adapter_versions"


@dataclass(frozen=True)
class ListFilter:
    """What ``list`` selects, compiled from a ``ListQuery`` (``store/list_query.py``);
    every given filter must hold."""

    name_glob: str | None = None
    base: str | None = None  # NAME[@REVISION], or a base fingerprint sha256:HEX (12+ digits)
    method: str | None = None
    include_yanked: bool = True
    status: str | None = None  # "active" | "yanked"
    alias: str | None = None
    tags: tuple[tuple[str, str | None], ...] = ()  # (key, value); value None: key present
    data_sha256: str | None = None  # training data digest, sha256:HEX (12+ digits)
    where: tuple[Condition, ...] = ()
    sort: str = "name"  # name | version | created | METRIC[@DATASET]
    reverse: bool = False
    limit: int | None = None


class Statement(NamedTuple):
    sql: str
    params: dict[str, Any]


@dataclass(frozen=True)
class SortOrder:
    kind: Literal["name", "version", "created", "metric"]
    metric: str | None = None
    dataset: str | None = None


def parse_sort(text: str) -> SortOrder:
    """``name``, ``version``, ``created``, or ``METRIC[@DATASET]`` (best first)."""
    text = text.strip()
    if text in ("name", "version", "created"):
        return SortOrder(text)  # type: ignore[arg-type]
    metric, sep, dataset = text.partition("@")
    validate_metric(metric)
    if sep:
        if not dataset:
            raise ArgumentError(f"invalid sort key {text!r}: nothing after '@'")
        validate_dataset(dataset)
    return SortOrder("metric", metric, dataset or None)


def digest_prefix(text: str, what: str) -> str:
    """``sha256:HEX`` (or bare HEX), 12 to 64 lowercase hex digits, as bare hex."""
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    if not _HEX_PREFIX.match(value):
        raise InvalidNameError(
            f"invalid {what} {text!r}: expected 'sha256:' and 12 to 64 hex digits"
        )
    return value


class SqlParams:
    """Bound parameters of one statement, named ``:p0``, ``:p1``...: the placeholder style
    both ``sqlite3`` and SQLAlchemy's ``text()`` (on every backend) accept."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, value: Any) -> str:
        key = f"p{len(self.values)}"
        self.values[key] = value
        return ":" + key


def _hex_match(column: str, hex_value: str, bind: SqlParams, *, prefixed: bool) -> str:
    full = ("sha256:" if prefixed else "") + hex_value
    if len(hex_value) == 64:
        return f"{column} = {bind(full)}"
    # A half-open range instead of LIKE: it uses the index on every backend, and
    # SQLite's LIKE ignores case (so it never uses a plain index).
    return f"{column} >= {bind(full)} AND {column} < {bind(full + 'g')}"


def latest_eval_value(
    bind: SqlParams, metric: str, dataset: str | None = None, split: str | None = None
) -> str:
    """The value of the last recorded eval of ``metric`` for the outer version row.

    Served by ix_evals_version_metric_id / ix_evals_version_metric_dataset_id:
    one index seek per version, reading backwards from the highest id.
    """
    where = [f"ev.version_id = {_V}.id", f"ev.metric = {bind(metric)}"]
    if dataset is not None:
        where.append(f"ev.dataset = {bind(dataset)}")
    if split is not None:
        where.append(f"ev.split = {bind(split)}")
    return (
        f"(SELECT ev.value FROM evals AS ev WHERE {' AND '.join(where)} "
        "ORDER BY ev.id DESC LIMIT 1)"
    )


_SQL_OPERATORS = {">=": ">=", ">": ">", "<=": "<=", "<": "<", "==": "=", "!=": "!="}


def condition_clause(condition: Condition, bind: SqlParams) -> str:
    value = latest_eval_value(bind, condition.metric, condition.dataset, condition.split)
    # A missing eval makes the subquery NULL, and NULL compares as unknown, so a
    # version without the eval never matches, for every operator including !=.
    return f"{value} {_SQL_OPERATORS[condition.op]} {bind(condition.value)}"


def glob_to_like(glob: str) -> str:
    out = []
    for char in glob:
        if char in "%_\\":
            out.append("\\" + char)
        elif char == "*":
            out.append("%")
        elif char == "?":
            out.append("_")
        else:
            out.append(char)
    return "".join(out)


def filter_clauses(flt: ListFilter, bind: SqlParams) -> list[str]:
    """Every filter of ``flt`` as a SQL condition on adapter_versions (ANDed)."""
    v = _V
    clauses: list[str] = []
    if flt.name_glob:
        # Names are lowercase, so matching the lowered glob is case-insensitive on
        # every backend (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
        pattern = bind(glob_to_like(flt.name_glob.lower()))
        clauses.append(f"{v}.name LIKE {pattern} ESCAPE '\\'")
    if flt.base:
        base = flt.base.strip()
        if base.lower().startswith("sha256:"):
            fingerprint = digest_prefix(base, "base fingerprint")
            clauses.append(_hex_match(f"{v}.base_fingerprint", fingerprint, bind, prefixed=True))
        else:
            name, _, revision = base.partition("@")
            clauses.append(f"{v}.base_name = {bind(name)}")
            if revision:
                clauses.append(f"{v}.base_revision = {bind(revision)}")
    if flt.method:
        clauses.append(f"{v}.method = {bind(flt.method.lower())}")
    if not flt.include_yanked:
        clauses.append(f"{v}.status != {bind('yanked')}")
    if flt.status is not None:
        if flt.status not in STATUSES:
            raise ArgumentError(f"unknown status {flt.status!r}; use one of {STATUSES}")
        clauses.append(f"{v}.status = {bind(flt.status)}")
    if flt.alias:
        clauses.append(
            f"{v}.id IN (SELECT aliases.version_id FROM aliases "
            f"WHERE aliases.alias = {bind(flt.alias)})"
        )
    for key, value in flt.tags:
        tagged = f"SELECT tags.version_id FROM tags WHERE tags.key = {bind(key)}"
        if value is not None:
            tagged += f" AND tags.value = {bind(value)}"
        clauses.append(f"{v}.id IN ({tagged})")
    if flt.data_sha256:
        data = digest_prefix(flt.data_sha256, "training data digest")
        match = _hex_match("training_data.sha256", data, bind, prefixed=False)
        clauses.append(
            f"{v}.id IN (SELECT training_data.version_id FROM training_data WHERE {match})"
        )
    clauses.extend(condition_clause(c, bind) for c in flt.where)
    return clauses


def _where(flt: ListFilter, bind: SqlParams) -> str:
    clauses = filter_clauses(flt, bind)
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""


def byte_order(column: str, dialect: str) -> str:
    """``column`` compared by code points, as Python compares ``str`` (PostgreSQL's
    default collation is the locale's; SQLite's BINARY already is)."""
    return f'{column} COLLATE "C"' if dialect == "postgresql" else column


def id_query(
    flt: ListFilter,
    *,
    whole_rows: bool = False,
    dialect: str = "",
    after: Sequence[Any] | None = None,
) -> Statement:
    """Step one: the matching ids (and sort keys), ordered and limited where SQL can.

    ``whole_rows`` selects every column instead (id, name and version stay first),
    for listings without a limit, which load every match anyway. ``after`` (name
    order with a limit) is the (name, version_key, id) of the last row of the previous
    page: the page after it, one range of the (name, version_key) index.
    """
    v = _V
    order = parse_sort(flt.sort)
    bind = SqlParams()
    columns = VERSION_COLUMNS if whole_rows else ("id", "name", "version")
    clauses = filter_clauses(flt, bind)
    if after is not None:
        if order.kind != "name" or flt.limit is None:
            raise ArgumentError("a page after a key needs the name order and a limit")
        key = (byte_order(f"{v}.name", dialect), f"{v}.version_key", f"{v}.id")
        # A row-value comparison, so the page stays right while versions are pushed.
        values = ", ".join(bind(value) for value in after)
        clauses.append(f"({', '.join(key)}) {'<' if flt.reverse else '>'} ({values})")
    sql = f"SELECT {', '.join(f'{v}.{c}' for c in columns)} FROM {v}"
    if clauses:
        sql += f" WHERE {' AND '.join(clauses)}"
    keys: list[str] = []
    if order.kind == "created":
        keys = [f"{v}.created_at {'ASC' if flt.reverse else 'DESC'}"]
        keys.append(f"{v}.id {'ASC' if flt.reverse else 'DESC'}")
    elif order.kind == "metric":
        assert order.metric is not None
        value = latest_eval_value(bind, order.metric, order.dataset)
        # Versions without the metric come last in either direction.
        keys = [f"{value} {'ASC' if flt.reverse else 'DESC'} NULLS LAST", f"{v}.name", f"{v}.id"]
    elif order.kind == "name" and flt.limit is not None:
        # Python's order (name by code point, then PEP 440), so SQL can apply the limit.
        direction = "DESC" if flt.reverse else "ASC"
        names = (byte_order(f"{v}.name", dialect), f"{v}.version_key", f"{v}.id")
        keys = [f"{key} {direction}" for key in names]
    if keys:
        sql += " ORDER BY " + ", ".join(keys)
    if order.kind in ("created", "metric", "name") and flt.limit is not None:
        sql += f" LIMIT {bind(flt.limit)}"
    return Statement(sql, bind.values)


def count_query(flt: ListFilter) -> Statement:
    """How many versions match ``flt``'s filters (its order and limit aside)."""
    bind = SqlParams()
    return Statement(f"SELECT count(*) FROM {_V}" + _where(flt, bind), bind.values)


def ordered_rows(rows: Sequence[Any], flt: ListFilter) -> list[Any]:
    """Apply PEP 440 orders (and then the limit) that SQL could not.

    Rows start with (id, name, version).
    """
    order = parse_sort(flt.sort)
    if order.kind == "name":
        rows = sorted(rows, key=lambda r: (r[1], parsed_version(r[2])), reverse=flt.reverse)
    elif order.kind == "version":
        rows = sorted(rows, key=lambda r: (parsed_version(r[2]), r[1]), reverse=flt.reverse)
    return list(rows[: flt.limit] if flt.limit is not None else rows)


def ordered_ids(rows: Sequence[Any], flt: ListFilter) -> list[int]:
    return [int(r[0]) for r in ordered_rows(rows, flt)]


def list_versions(execute: Execute, flt: ListFilter, dialect: str) -> list[AdapterVersion]:
    """Versions matching every filter of ``flt``, in its order."""
    return [build(record) for record in list_records(execute, flt, dialect)]


def list_records(execute: Execute, flt: ListFilter, dialect: str) -> list[Record]:
    """``list_versions`` as the records its results are built from (``version_rows``)."""
    if flt.limit is None:
        # Every match is loaded anyway: read whole rows in one go.
        rows = list(execute(*id_query(flt, whole_rows=True)))
    else:
        ids = ordered_ids(list(execute(*id_query(flt, dialect=dialect))), flt)
        return read_records(execute, rows_of_ids(execute, ids))
    return read_records(execute, ordered_rows(rows, flt))


# Rows per page of a streamed listing: enough to size a table's columns, few enough
# that memory stays flat however many versions match.
PAGE_SIZE = 1000


def version_pages(
    connect: Callable[[], AbstractContextManager[Execute]],
    flt: ListFilter,
    dialect: str,
    size: int | None = None,
) -> Iterator[list[AdapterVersion]]:
    """``list_versions(flt)`` a page at a time, so a caller can print the first rows
    before the last are read and hold one page in memory. Each page is read on its own
    connection from ``connect``. The name order pages by key in SQL; the others read
    the ordered ids once (a few bytes per match) and load them a page at a time."""
    size = size or PAGE_SIZE
    if flt.limit is not None:
        with connect() as execute:
            yield list_versions(execute, flt, dialect)
        return
    if parse_sort(flt.sort).kind != "name":
        with connect() as execute:
            ids = ordered_ids(list(execute(*id_query(flt, dialect=dialect))), flt)
        for start in range(0, len(ids), size):
            with connect() as execute:
                yield load_ids(execute, ids[start : start + size])
        return
    # Name order: each page is the next range of the index after the previous page's key.
    paged = replace(flt, limit=size)
    key = [VERSION_COLUMNS.index(column) for column in ("name", "version_key", "id")]
    after: tuple[Any, ...] | None = None
    while True:
        with connect() as execute:
            statement = id_query(paged, whole_rows=True, dialect=dialect, after=after)
            rows = list(execute(*statement))
            page = load_rows(execute, rows)
        if page:
            yield page
        if len(rows) < size:
            return
        after = tuple(rows[-1][i] for i in key)


def count_matching(execute: Execute, flt: ListFilter) -> int:
    return int(next(iter(execute(*count_query(flt))))[0])


def explain(engine: Engine, flt: ListFilter) -> list[str]:
    """The database's plan for step one of this listing, one line per step."""
    from sqlalchemy import text

    sql, params = id_query(flt, dialect=engine.dialect.name)
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.execute(text(prefix + sql), params).all()
    if engine.dialect.name != "sqlite":
        return [str(row[0]) for row in rows]
    # SQLite rows are (id, parent, _, detail): indent each step under its parent.
    depth: dict[int, int] = {0: -1}
    lines = []
    for step, parent, _unused, detail in rows:
        depth[step] = depth.get(parent, -1) + 1
        lines.append("  " * depth[step] + str(detail))
    return lines
