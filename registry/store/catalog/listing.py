"""The ``list`` query: filters and sort orders compiled to one indexed SQL statement.

Listing runs in two steps. The first selects only ids (plus what the order needs)
of the matching versions, so filters and ``LIMIT`` run in the database on indexes;
the second loads the chosen rows with their annotations. PEP 440 order cannot be
expressed in SQL, so ``version`` order sorts the small id tuples in Python before
the limit is applied. ``name`` order with a limit runs in SQL on the
``(name, version_key)`` index (``version_key`` is PEP 440 order as a byte-ordered
string), so a page of a huge catalog reads a page of rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from packaging.version import Version
from sqlalchemy import ColumnElement, ScalarSelect, Select, and_, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import col

from registry.errors import ArgumentError, InvalidNameError
from registry.store.catalog.tables import (
    AdapterVersionRow,
    AliasRow,
    EvalRow,
    TagRow,
    TrainingDataRow,
)
from registry.store.conditions import Condition, validate_dataset, validate_metric

if TYPE_CHECKING:
    from registry.store.catalog.catalog import ListFilter

STATUSES = ("active", "yanked")
_HEX_PREFIX = re.compile(r"^[0-9a-f]{12,64}$")


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


def _hex_match(column: Any, hex_value: str, *, prefixed: bool) -> ColumnElement[bool]:
    full = ("sha256:" if prefixed else "") + hex_value
    if len(hex_value) == 64:
        return column == full  # type: ignore[no-any-return]
    # A half-open range instead of LIKE: it uses the index on every backend, and
    # SQLite's LIKE ignores case (so it never uses a plain index).
    return and_(column >= full, column < full + "g")


def latest_eval_value(
    metric: str, dataset: str | None = None, split: str | None = None
) -> ScalarSelect[float]:
    """The value of the last recorded eval of ``metric`` for the outer version row.

    Served by ix_evals_version_metric_id / ix_evals_version_metric_dataset_id:
    one index seek per version, reading backwards from the highest id.
    """
    ev = aliased(EvalRow)
    query = select(col(ev.value)).where(
        col(ev.version_id) == col(AdapterVersionRow.id), col(ev.metric) == metric
    )
    if dataset is not None:
        query = query.where(col(ev.dataset) == dataset)
    if split is not None:
        query = query.where(col(ev.split) == split)
    latest: ScalarSelect[float] = (
        query.order_by(col(ev.id).desc()).limit(1).correlate(AdapterVersionRow).scalar_subquery()
    )
    return latest


def condition_clause(condition: Condition) -> ColumnElement[bool]:
    value = latest_eval_value(condition.metric, condition.dataset, condition.split)
    # A missing eval makes the subquery NULL, and NULL compares as unknown, so a
    # version without the eval never matches, for every operator including !=.
    comparisons = {
        ">=": value >= condition.value,
        ">": value > condition.value,
        "<=": value <= condition.value,
        "<": value < condition.value,
        "==": value == condition.value,
        "!=": value != condition.value,
    }
    return comparisons[condition.op]


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


def filter_clauses(flt: ListFilter) -> list[ColumnElement[bool]]:
    """Every filter of ``flt`` as a SQL condition on adapter_versions (ANDed)."""
    v = AdapterVersionRow
    clauses: list[ColumnElement[bool]] = []
    if flt.name_glob:
        # Names are lowercase, so matching the lowered glob is case-insensitive on
        # every backend (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
        clauses.append(col(v.name).like(glob_to_like(flt.name_glob.lower()), escape="\\"))
    if flt.base:
        base = flt.base.strip()
        if base.lower().startswith("sha256:"):
            fingerprint = digest_prefix(base, "base fingerprint")
            clauses.append(_hex_match(col(v.base_fingerprint), fingerprint, prefixed=True))
        else:
            name, _, revision = base.partition("@")
            clauses.append(col(v.base_name) == name)
            if revision:
                clauses.append(col(v.base_revision) == revision)
    if flt.method:
        clauses.append(col(v.method) == flt.method.lower())
    if not flt.include_yanked:
        clauses.append(col(v.status) != "yanked")
    if flt.status is not None:
        if flt.status not in STATUSES:
            raise ArgumentError(f"unknown status {flt.status!r}; use one of {STATUSES}")
        clauses.append(col(v.status) == flt.status)
    if flt.alias:
        clauses.append(
            col(v.id).in_(select(col(AliasRow.version_id)).where(col(AliasRow.alias) == flt.alias))
        )
    for key, value in flt.tags:
        tagged = select(col(TagRow.version_id)).where(col(TagRow.key) == key)
        if value is not None:
            tagged = tagged.where(col(TagRow.value) == value)
        clauses.append(col(v.id).in_(tagged))
    if flt.data_sha256:
        data = digest_prefix(flt.data_sha256, "training data digest")
        clauses.append(
            col(v.id).in_(
                select(col(TrainingDataRow.version_id)).where(
                    _hex_match(col(TrainingDataRow.sha256), data, prefixed=False)
                )
            )
        )
    clauses.extend(condition_clause(c) for c in flt.where)
    return clauses


def byte_order(column: Any, dialect: str) -> Any:
    """``column`` compared by code points, as Python compares ``str`` (PostgreSQL's
    default collation is the locale's; SQLite's BINARY already is)."""
    return column.collate("C") if dialect == "postgresql" else column


def id_query(flt: ListFilter, *, whole_rows: bool = False, dialect: str = "") -> Select[Any]:
    """Step one: the matching ids (and sort keys), ordered and limited where SQL can.

    ``whole_rows`` selects every column instead (id, name and version stay first),
    for listings without a limit, which load every match anyway.
    """
    v = AdapterVersionRow
    order = parse_sort(flt.sort)
    table = AdapterVersionRow.__table__  # type: ignore[attr-defined]
    columns: list[Any] = (
        list(table.columns) if whole_rows else [col(v.id), col(v.name), col(v.version)]
    )
    query = select(*columns).where(*filter_clauses(flt))
    if order.kind == "created":
        created, row_id = col(v.created_at), col(v.id)
        if flt.reverse:
            query = query.order_by(created.asc(), row_id.asc())
        else:
            query = query.order_by(created.desc(), row_id.desc())
    elif order.kind == "metric":
        assert order.metric is not None
        value = latest_eval_value(order.metric, order.dataset)
        best = value.asc() if flt.reverse else value.desc()
        # Versions without the metric come last in either direction.
        query = query.order_by(best.nulls_last(), col(v.name), col(v.id))
    elif order.kind == "name" and flt.limit is not None:
        # Python's order (name by code point, then PEP 440), so SQL can apply the limit.
        keys = (byte_order(col(v.name), dialect), col(v.version_key), col(v.id))
        query = query.order_by(*(key.desc() if flt.reverse else key.asc() for key in keys))
    if order.kind in ("created", "metric", "name") and flt.limit is not None:
        query = query.limit(flt.limit)
    return query


def ordered_rows(rows: Sequence[Any], flt: ListFilter) -> list[Any]:
    """Apply PEP 440 orders (and then the limit) that SQL could not.

    Rows start with (id, name, version).
    """
    order = parse_sort(flt.sort)
    if order.kind == "name":
        rows = sorted(rows, key=lambda r: (r[1], Version(r[2])), reverse=flt.reverse)
    elif order.kind == "version":
        rows = sorted(rows, key=lambda r: (Version(r[2]), r[1]), reverse=flt.reverse)
    return list(rows[: flt.limit] if flt.limit is not None else rows)


def ordered_ids(rows: Sequence[Any], flt: ListFilter) -> list[int]:
    return [int(r[0]) for r in ordered_rows(rows, flt)]


def explain(engine: Engine, flt: ListFilter) -> list[str]:
    """The database's plan for step one of this listing, one line per step."""
    query = id_query(flt)
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    sql = str(compiled)
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + sql).all()
    if engine.dialect.name != "sqlite":
        return [str(row[0]) for row in rows]
    # SQLite rows are (id, parent, _, detail): indent each step under its parent.
    depth: dict[int, int] = {0: -1}
    lines = []
    for step, parent, _unused, detail in rows:
        depth[step] = depth.get(parent, -1) + 1
        lines.append("  " * depth[step] + str(detail))
    return lines
