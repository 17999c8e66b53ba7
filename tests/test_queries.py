"""`list` filters, eval conditions and sort orders, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.lifecycle import insert, manifest, one_line_error, run
from support.sql_trace import traced, values_named

from registry import Registry
from registry.errors import ArgumentError, InvalidNameError, RegistryError
from registry.store.catalog.listing import ListFilter, explain
from registry.store.conditions import Condition, parse_condition
from registry.store.list_query import ListQuery
from registry.store.results import AdapterVersion

FP_A = "sha256:" + "a1" * 32
FP_B = "sha256:" + "b2" * 32
DATA_1 = "d1" * 32
DATA_2 = "e2" * 32


@pytest.fixture
def catalog_reg(registry: Registry) -> Registry:
    """Versions inserted straight into the catalog: bases, fingerprints, data, evals, tags."""
    cat = registry.catalog
    insert(
        cat,
        "sql",
        manifest(1, fingerprint=FP_A, data=[DATA_1]),
        version="1.0",
        evals=[("accuracy", 0.80, "spider")],
        tags={"team": "nlp"},
    )
    insert(
        cat,
        "sql",
        manifest(2, fingerprint=FP_A, data=[DATA_1, DATA_2]),
        version="1.10",
        evals=[("accuracy", 0.95, "spider"), ("accuracy", 0.60, "bird")],
        tags={"team": "nlp", "stage": "rc"},
        alias="prod",
    )
    insert(
        cat,
        "sql",
        manifest(3, fingerprint=FP_A),
        version="1.9",
        evals=[("accuracy", 0.91, "spider"), ("latency", 120.0, "")],
    )
    insert(
        cat,
        "chat",
        manifest(4, base="other/base", revision="r2", fingerprint=FP_B),
        version="2.0rc1",
        evals=[("accuracy", 0.99, "mmlu")],
        tags={"team": "chat"},
    )
    insert(
        cat,
        "chat",
        manifest(5, method="ia3", base="other/base", data=[DATA_2]),
        version="1",
        alias="prod",
    )
    insert(cat, "plain", manifest(6, base="tiny/llama", revision="main"))
    return registry


def refs(registry: Registry, **filters: object) -> list[str]:
    return [v.ref for v in registry.list(**filters)]  # type: ignore[arg-type]


# -- filters -----------------------------------------------------------------------------


def test_filter_by_base_name_or_fingerprint(catalog_reg: Registry) -> None:
    assert refs(catalog_reg, base="tiny/llama") == ["plain@1", "sql@1.0", "sql@1.9", "sql@1.10"]
    assert refs(catalog_reg, base="tiny/llama@main") == ["plain@1"]
    assert refs(catalog_reg, base="other/base@r2") == ["chat@2.0rc1"]
    assert refs(catalog_reg, base=FP_A) == ["sql@1.0", "sql@1.9", "sql@1.10"]
    assert refs(catalog_reg, base=FP_A[:19]) == ["sql@1.0", "sql@1.9", "sql@1.10"]
    assert refs(catalog_reg, base=FP_B.upper().replace("SHA256", "sha256")[:30]) == ["chat@2.0rc1"]
    assert refs(catalog_reg, base="sha256:" + "a1" * 5 + "ff") == []
    with pytest.raises(InvalidNameError, match="12 to 64 hex digits"):
        catalog_reg.list(base="sha256:a1a1")


def test_filter_by_method_alias_tag_status(catalog_reg: Registry) -> None:
    assert refs(catalog_reg, method="ia3") == ["chat@1"]
    assert refs(catalog_reg, alias="prod") == ["chat@1", "sql@1.10"]
    assert refs(catalog_reg, tags={"team": "nlp"}) == ["sql@1.0", "sql@1.10"]
    assert refs(catalog_reg, tags={"team": "nlp", "stage": "rc"}) == ["sql@1.10"]
    assert refs(catalog_reg, tags={"stage": None}) == ["sql@1.10"]
    assert refs(catalog_reg, tags={"team": None}, method="ia3") == []
    catalog_reg.yank("sql@1.0", "old")
    assert refs(catalog_reg, status="yanked") == ["sql@1.0"]
    assert "sql@1.0" not in refs(catalog_reg, status="active")


def test_filter_by_training_data(catalog_reg: Registry, tmp_path: Path) -> None:
    assert refs(catalog_reg, data=f"sha256:{DATA_1}") == ["sql@1.0", "sql@1.10"]
    assert refs(catalog_reg, data=f"sha256:{DATA_2}") == ["chat@1", "sql@1.10"]
    assert refs(catalog_reg, data=f"sha256:{DATA_2[:16]}") == ["chat@1", "sql@1.10"]
    # A file is digested the same way push digests --data.
    sample = tmp_path / "train.jsonl"
    sample.write_text('{"q": 1}\n')
    digest = hashlib.sha256(sample.read_bytes()).hexdigest()
    insert(catalog_reg.catalog, "fromfile", manifest(7, data=[digest]))
    assert refs(catalog_reg, data=sample) == ["fromfile@1"]
    assert refs(catalog_reg, data="sha256:" + "0" * 64) == []
    with pytest.raises(ArgumentError, match="neither a digest"):
        catalog_reg.list(data=tmp_path / "missing.jsonl")


def test_where_compares_the_latest_eval(catalog_reg: Registry) -> None:
    assert refs(catalog_reg, where=["accuracy>=0.9"]) == ["chat@2.0rc1", "sql@1.9"]
    # sql@1.10's latest accuracy is on bird (0.60); on spider it is 0.95.
    assert refs(catalog_reg, where=["accuracy@spider>=0.9"]) == ["sql@1.9", "sql@1.10"]
    assert refs(catalog_reg, where=["accuracy@spider>0.91"]) == ["sql@1.10"]
    assert refs(catalog_reg, where=["accuracy@spider==0.8"]) == ["sql@1.0"]
    assert refs(catalog_reg, where=["accuracy@spider!=0.8"]) == ["sql@1.9", "sql@1.10"]
    assert refs(catalog_reg, where=["accuracy<0.7"]) == ["sql@1.10"]
    assert refs(catalog_reg, where=["accuracy <= 0.8"]) == ["sql@1.0", "sql@1.10"]
    # Several conditions are ANDed; a missing eval never matches, even with !=.
    assert refs(catalog_reg, where=["accuracy@spider>=0.9", "latency<200"]) == ["sql@1.9"]
    assert refs(catalog_reg, where=["latency!=5"]) == ["sql@1.9"]
    # A newer eval replaces the older one for the comparison.
    catalog_reg.record_eval("sql@1.9", {"accuracy": 0.5}, dataset="spider")
    assert refs(catalog_reg, where=["accuracy@spider>=0.9"]) == ["sql@1.10"]
    assert refs(catalog_reg, where=[Condition("accuracy", ">=", 0.9, "mmlu")]) == ["chat@2.0rc1"]


def test_filters_combine(catalog_reg: Registry) -> None:
    assert refs(
        catalog_reg, base="tiny/llama", where=["accuracy@spider>=0.9"], tags={"team": "nlp"}
    ) == ["sql@1.10"]
    assert refs(catalog_reg, name="chat", alias="prod", method="ia3") == ["chat@1"]


# -- sorting and limits ---------------------------------------------------------------------


def test_sort_orders(catalog_reg: Registry) -> None:
    # name, then PEP 440 order within a name (1.9 before 1.10).
    assert refs(catalog_reg) == [
        "chat@1",
        "chat@2.0rc1",
        "plain@1",
        "sql@1.0",
        "sql@1.9",
        "sql@1.10",
    ]
    assert refs(catalog_reg, name="sql", sort="version", reverse=True) == [
        "sql@1.10",
        "sql@1.9",
        "sql@1.0",
    ]
    assert refs(catalog_reg, sort="version")[:3] == ["chat@1", "plain@1", "sql@1.0"]
    assert refs(catalog_reg, sort="created") == [
        "plain@1",
        "chat@1",
        "chat@2.0rc1",
        "sql@1.9",
        "sql@1.10",
        "sql@1.0",
    ]
    assert refs(catalog_reg, sort="created", limit=2) == ["plain@1", "chat@1"]
    assert refs(catalog_reg, sort="created", reverse=True, limit=1) == ["sql@1.0"]
    # Metric orders put the best first and versions without the metric last.
    assert refs(catalog_reg, sort="accuracy") == [
        "chat@2.0rc1",
        "sql@1.9",
        "sql@1.0",
        "sql@1.10",
        "chat@1",
        "plain@1",
    ]
    assert refs(catalog_reg, sort="accuracy@spider", limit=2) == ["sql@1.10", "sql@1.9"]
    assert refs(catalog_reg, sort="latency", reverse=True)[0] == "sql@1.9"
    assert refs(catalog_reg, sort="name", reverse=True, limit=2) == ["sql@1.10", "sql@1.9"]
    assert refs(catalog_reg, limit=1) == ["chat@1"]


@pytest.mark.parametrize(
    ("kwargs", "error", "expected"),
    [
        ({"where": ["accuracy>>0.9"]}, ArgumentError, "invalid condition"),
        ({"where": ["accuracy>=high"]}, ArgumentError, "is not a number"),
        ({"where": ["accuracy>=nan"]}, ArgumentError, "must be finite"),
        ({"where": ["accuracy@>=0.9"]}, ArgumentError, "nothing after '@'"),
        ({"where": ["accuracy"]}, ArgumentError, "invalid condition"),
        ({"where": ["a" * 200 + ">=1"]}, InvalidNameError, "longer than 128"),
        ({"sort": "accuracy@"}, ArgumentError, "nothing after '@'"),
        ({"sort": "bad name"}, InvalidNameError, "invalid metric name"),
        ({"status": "deleted"}, ArgumentError, "unknown status"),
        ({"limit": 0}, ArgumentError, "limit must be between"),
        ({"alias": "v1"}, InvalidNameError, "reads as a version"),
        ({"tags": {"a b": None}}, InvalidNameError, "invalid tag key"),
        ({"alias": "v1", "limit": 0}, ArgumentError, "reads as a version.*limit must be"),
    ],
)
def test_bad_filters_are_refused_before_any_query(
    catalog_reg: Registry, kwargs: dict[str, object], error: type[Exception], expected: str
) -> None:
    with pytest.raises(error, match=expected) as info:
        catalog_reg.list(**kwargs)
    # Names and parameters are told apart: a name error is not also a parameter error.
    assert not isinstance(info.value, InvalidNameError if error is ArgumentError else ArgumentError)


def test_every_bad_filter_is_reported_at_once(catalog_reg: Registry) -> None:
    with pytest.raises(ArgumentError) as info:
        catalog_reg.list(where=["a>>1", "b>=x"], sort="x@", status="gone")
    message = str(info.value)
    for part in ("'a>>1'", "'x' is not a number", "nothing after '@'", "unknown status"):
        assert part in message


def test_list_cli(catalog_reg: Registry) -> None:
    listed = run(
        "list",
        "--base",
        "tiny/llama",
        "--where",
        "accuracy@spider>=0.9",
        "--sort",
        "accuracy@spider",
        "--json",
    )
    assert listed.exit_code == 0, listed.output
    assert [v["ref"] for v in json.loads(listed.stdout)] == ["sql@1.10", "sql@1.9"]
    by_tag = run("list", "--tag", "team=nlp", "--tag", "stage", "--json")
    assert [v["ref"] for v in json.loads(by_tag.stdout)] == ["sql@1.10"]
    by_data = run("list", "--data", f"sha256:{DATA_1}", "--alias", "prod", "--json")
    assert [v["ref"] for v in json.loads(by_data.stdout)] == ["sql@1.10"]
    limited = run("list", "--sort", "created", "--reverse", "--limit", "1", "--json")
    assert [v["ref"] for v in json.loads(limited.stdout)] == ["sql@1.0"]
    table = run("list", "--where", "accuracy>=0.95")
    header, _, row = table.stdout.splitlines()
    assert "accuracy@mmlu" in header.split()  # one column per metric and dataset
    assert row.split()[0] == "chat" and "0.99" in row.split()
    nothing = run("list", "--where", "accuracy>=2")
    assert nothing.exit_code == 0 and "no adapters match" in nothing.stderr
    bad = run("list", "--where", "accuracy=>1")
    assert bad.exit_code == 1 and one_line_error(bad) and "invalid condition" in bad.stderr
    assert run("list", "--status", "gone").exit_code == 2
    assert run("list", "--limit", "0").exit_code == 2


def test_listing_plan_uses_indexes(catalog_reg: Registry) -> None:
    if catalog_reg.catalog.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN wording is SQLite's")
    plan = explain(
        catalog_reg.catalog.engine,
        ListFilter(base="tiny/llama", where=(parse_condition("accuracy>=0.9"),)),
    )
    text = "\n".join(plan)
    assert "ix_adapter_versions_base_name" in text
    assert "ix_evals_version_metric_id" in text
    assert "SCAN adapter_versions" not in text
    with_dataset = "\n".join(
        explain(
            catalog_reg.catalog.engine,
            ListFilter(where=(parse_condition("accuracy@spider>=0.9"),), data_sha256=DATA_1),
        )
    )
    assert "ix_evals_version_metric_dataset_id" in with_dataset
    assert "ix_training_data_sha256" in with_dataset


def test_next_version_number_reads_index_ranges(catalog_reg: Registry) -> None:
    """Every push reads the name's highest version: through the (name, version_key) index,
    never every version of the name."""
    if catalog_reg.catalog.engine.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN wording is SQLite's")
    from registry.store.catalog.catalog import _HIGHEST

    with catalog_reg.catalog.engine.connect() as connection:
        rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + _HIGHEST, {"name": "x"})
        text = "\n".join(str(row[-1]) for row in rows)
    assert "ix_adapter_versions_name (name=?)" not in text
    assert text.count("ix_adapter_versions_name_version_key") == 2


# -- the condition grammar ---------------------------------------------------------------------

METRIC = st.from_regex(r"[a-z][a-z0-9_./:+-]{0,20}", fullmatch=True)
DATASET = st.from_regex(r"[a-z0-9][a-z0-9_./:-]{0,20}", fullmatch=True)
VALUE = st.floats(allow_nan=False, allow_infinity=False, width=32)


@given(METRIC, st.none() | DATASET, st.sampled_from([">=", ">", "<=", "<", "==", "!="]), VALUE)
@settings(max_examples=200, deadline=None)
def test_condition_round_trips(metric: str, dataset: str | None, op: str, value: float) -> None:
    text = f"{metric}{'@' + dataset if dataset else ''}{op}{value!r}"
    parsed = parse_condition(text)
    assert parsed == Condition(metric, op, value, dataset)
    assert (
        parse_condition(f"  {metric}{'@' + dataset if dataset else ''} {op} {value!r} ") == parsed
    )


def test_condition_semantics() -> None:
    condition = parse_condition("acc@d>=0.5")
    assert condition.holds(0.5) and not condition.holds(0.49) and not condition.holds(None)
    assert parse_condition("acc!=1").holds(2) and not parse_condition("acc!=1").holds(None)
    assert str(condition) == "acc@d>=0.5"


def test_catalog_benchmark_runs_and_uses_indexes(tmp_path: Path) -> None:
    """benchmarks/bench_catalog.py at a small size: it runs, and every statement it
    captures is an index search (the 100,000-version figures are in docs/benchmarks.md)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(
        [
            sys.executable,
            str(root / "benchmarks" / "bench_catalog.py"),
            "--versions",
            "3000",
            "--repeat",
            "2",
            "--keep",
            str(tmp_path / "bench"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    assert results["versions"] == 3000
    assert results["resolved"] == ["team-0003/adapter@1.9", "hot/adapter@1.99"]
    plans = done.stdout
    assert "USING COVERING INDEX ix_evals_version_metric_id" in plans
    assert "USING INDEX ix_adapter_versions_base_name" in plans
    assert "USING INDEX ix_adapter_versions_name_version_key" in plans
    assert "SCAN " not in plans


def test_a_list_query_or_its_fields(catalog_reg: Registry) -> None:
    query = ListQuery(base="tiny/llama", sort="accuracy@spider", limit=2)
    assert [v.ref for v in catalog_reg.list(query)] == ["sql@1.10", "sql@1.9"]
    assert catalog_reg.list(query) == catalog_reg.list(
        base="tiny/llama", sort="accuracy@spider", limit=2
    )
    with pytest.raises(TypeError, match=r"unknown list filter.*'bsae'"):
        catalog_reg.list(bsae="tiny/llama")
    with pytest.raises(TypeError, match="not both"):
        catalog_reg.list(query, limit=1)
    with pytest.raises(TypeError, match="expected a ListQuery"):
        catalog_reg.list({"base": "tiny/llama"})  # type: ignore[arg-type]
    # Checking happens when the query runs, with every problem in one error.
    with pytest.raises(ArgumentError, match=r"unknown status.*limit must be"):
        ListQuery(status="gone", limit=0).compile()


# -- the read path without SQLAlchemy ----------------------------------------------------


PARITY_QUERIES: list[dict[str, object]] = [
    {},
    {"limit": 2},
    {"limit": 3, "reverse": True},
    {"name": "s*"},
    {"name": "C?AT"},
    {"base": "other/base"},
    {"base": "other/base@r2"},
    {"base": FP_A[:19]},
    {"base": FP_B},
    {"method": "ia3"},
    {"alias": "prod"},
    {"tags": {"team": "nlp"}},
    {"tags": {"team": None, "stage": "rc"}},
    {"data": "sha256:" + DATA_2[:16]},
    {"where": ["accuracy>=0.9"]},
    {"where": ["accuracy@spider<0.95", "latency!=1"]},
    {"status": "yanked"},
    {"status": "active", "limit": 1},
    {"sort": "version"},
    {"sort": "version", "reverse": True, "limit": 2},
    {"sort": "created"},
    {"sort": "created", "reverse": True, "limit": 4},
    {"sort": "accuracy@spider"},
    {"sort": "accuracy", "reverse": True, "limit": 3},
]


def test_the_sqlite_reader_lists_what_the_catalog_lists(catalog_reg: Registry) -> None:
    from registry.facade.reader import CatalogReader

    catalog_reg.yank("sql@1.9", reason="broken")
    catalog_reg.record_eval("chat@1", {"accuracy": 0.5}, dataset="mmlu", split="test")
    reader = CatalogReader.open(catalog_reg.home.root)
    if catalog_reg.catalog.engine.dialect.name != "sqlite":
        assert reader is None  # PostgreSQL catalogs are read through SQLAlchemy
        return
    assert reader is not None
    try:
        for query in PARITY_QUERIES:
            expected = catalog_reg.list(**query)  # type: ignore[arg-type]
            assert reader.list(**query) == expected, query  # type: ignore[arg-type]
            assert reader.count(**query) == catalog_reg.count(**query), query  # type: ignore[arg-type]
        assert any(v.yanked for v in reader.list()) and any(v.evals for v in reader.list())
        assert any(v.aliases for v in reader.list()) and any(v.tags for v in reader.list())
        with pytest.raises(ArgumentError, match="limit"):
            reader.list(limit=0)
    finally:
        reader.close()


def test_the_sqlite_reader_leaves_other_schema_versions_to_the_catalog(
    registry: Registry,
) -> None:
    import sqlite3

    from registry.store.catalog.sqlite_reader import SqliteReader

    if registry.catalog.engine.dialect.name != "sqlite":
        return
    path = Path(str(registry.catalog.engine.url.database))
    reader = SqliteReader.open(path)
    assert reader is not None
    reader.close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE schema_info SET value = '999' WHERE key = 'schema_version'")
    assert SqliteReader.open(path) is None
    assert SqliteReader.open(path.with_name("missing.db")) is None
    assert not path.with_name("missing.db").exists()


def test_pages_stream_what_list_returns_in_every_order(
    catalog_reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.facade.reader import CatalogReader

    # Pages of two over six versions: every order crosses page boundaries, inside a name
    # (sql's 1.9 and 1.10) and across names.
    monkeypatch.setattr("registry.store.catalog.listing.PAGE_SIZE", 2)
    catalog_reg.yank("sql@1.9", reason="broken")
    reader = CatalogReader.open(catalog_reg.home.root)
    try:
        for query in [*PARITY_QUERIES, {"reverse": True}, {"sort": "version", "reverse": True}]:
            expected = catalog_reg.list(**query)  # type: ignore[arg-type]
            pages = list(catalog_reg.list_pages(**query))  # type: ignore[arg-type]
            assert [v for page in pages for v in page] == expected, query
            if "limit" not in query:
                assert all(len(page) <= 2 for page in pages), query
            if reader is not None:
                read = list(reader.list_pages(**query))  # type: ignore[arg-type]
                assert [v for page in read for v in page] == expected, query
    finally:
        if reader is not None:
            reader.close()


def test_the_first_page_is_read_without_the_rest(
    catalog_reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("registry.store.catalog.listing.PAGE_SIZE", 2)
    pages = catalog_reg.list_pages()
    with traced(catalog_reg.catalog.engine) as statements:
        first = next(pages)
    assert [v.ref for v in first] == ["chat@1", "chat@2.0rc1"]
    # One page of whole rows, limited in the database, then that page's annotations.
    selects = [s for s in statements if s.lstrip().startswith("SELECT")]
    assert "LIMIT" in selects[0] and "ORDER BY" in selects[0], selects[0]
    assert all(values_named(s) <= 3 for s in selects[1:]), selects
    # The next page starts after the last row's key, not at an offset.
    assert [v.ref for v in next(pages)] == ["plain@1", "sql@1.0"]


def _outcome(resolve: Callable[[str], AdapterVersion], ref: str) -> tuple[object, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            found: object = resolve(ref)
        except RegistryError as exc:
            found = (type(exc), str(exc))
    return found, [f"{w.category.__name__}: {w.message}" for w in caught]


def test_the_sqlite_reader_resolves_what_get_resolves(catalog_reg: Registry) -> None:
    from registry.facade.reader import CatalogReader
    from registry.hub.links import links_for_version, record_link

    catalog_reg.yank("sql@1.9", reason="broken")
    catalog_reg.record_eval("chat@1", {"accuracy": 0.5}, dataset="mmlu", split="test")
    chat_rc = catalog_reg.get("chat@2.0rc1")
    link = dict(digest=chat_rc.digest, endpoint="https://hub.example", repo_id="a/b")
    record_link(catalog_reg.catalog, name="chat", version="2.0rc1", direction="push",
                revision="main", commit="c" * 40, tag="v2", actor="me", **link)  # fmt: skip
    reader = CatalogReader.open(catalog_reg.home.root)
    if reader is None:
        assert catalog_reg.catalog.engine.dialect.name != "sqlite"
        return
    refs = [
        "sql", "sql@1.10", "sql@1.9", "sql@prod", "sql>=1.0,<1.10", "sql==1.9", "sql~=1.0",
        "chat", "chat>=2.0rc1", "chat@prod", f"chat@{chat_rc.digest[:19]}", "plain@1.0.0",
        # and every way of not finding one
        "nope", "nope@prod", "sql@staging", "sql@7.0", "sql>=5", "chat@sha256:" + "0" * 12,
        "nope@sha256:" + "0" * 12, "sql==1.9.1", "Bad Name", "sql@sha256:zz",
    ]  # fmt: skip
    try:
        for ref in refs:
            expected = _outcome(catalog_reg.get, ref)
            assert _outcome(reader.get, ref) == expected, ref
        assert _outcome(reader.get, "sql@1.9")[1] == [
            "YankedVersionWarning: sql@1.9 is yanked (broken); it resolved only because it was "
            "pinned exactly"
        ]
        assert isinstance(_outcome(reader.get, "nope")[0], tuple)
        # get and list give one version alike, timestamps in UTC as the tables store them.
        listed = next(v for v in catalog_reg.list() if v.ref == "sql@1.10")
        assert reader.get("sql@1.10") == catalog_reg.get("sql@1.10") == listed
        assert listed.created_at.tzinfo is not None
        assert reader.hub_links(chat_rc) == links_for_version(
            catalog_reg.catalog, "chat", "2.0rc1"
        )
        assert len(reader.hub_links(chat_rc)) == 1
        assert reader.hub_links(catalog_reg.get("sql")) == []
    finally:
        reader.close()
