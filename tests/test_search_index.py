"""The free-text search index (schema 5): the same substring answers as a plain scan on
both backends, kept in step with names, descriptions and tags, and built by the upgrade
of a schema-4 catalog that already holds versions."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select
from sqlmodel import col
from support.handmade import write_adapter

from registry import Registry
from registry.cli import main
from registry.store.catalog import browse, search_index
from registry.store.catalog.browse import browse_versions, search_clause
from registry.store.catalog.catalog import ListFilter
from registry.store.catalog.tables import AdapterVersionRow

QUERIES = [
    "lora",  # inside a name
    "LoRA",  # case folded (ASCII)
    "m/cha",  # across the namespace slash
    "ummar",  # inside a word of a description
    "summarises news",  # across words
    "100%",  # LIKE wildcards taken literally
    "a_b",
    'say "hi"',  # FTS5 quotes taken literally
    "stage",  # a tag key
    "prod-ca",  # inside a tag value
    "ge\nprod",  # across a tag's key and value: no match on either
    "ab",  # shorter than a trigram
    "é",
    "Ünï",  # non-ASCII letters match as written
    "nothing-like-this",
]


def _fill(registry: Registry, root: Path) -> None:
    pushes = [
        ("team/chat-lora", "Summarises news articles", {"stage": "prod-canary"}),
        ("team/code-ia3", '100% of a_b, say "hi"', {"owner": "ab"}),
        ("other/unicode", "café au lait", {"lang": "Ünïcode"}),
        ("solo", "", {"stage": "dev"}),
    ]
    for seed, (name, description, tags) in enumerate(pushes):
        registry.push(write_adapter(root / str(seed), seed=seed), name=name, tags=tags)
        if description:
            registry.describe(name, description)


def _expected(registry: Registry, text: str) -> set[str]:
    """What a case-insensitive (ASCII) substring match over every field finds, in Python."""

    def fold(s: str) -> str:
        return "".join(c.lower() if c.isascii() else c for c in s)

    found = set()
    for v in registry.list():
        fields = [v.name, v.description or "", *v.tags, *v.tags.values()]
        if any(fold(text) in fold(f) for f in fields):
            found.add(v.ref)
    return found


def _search(registry: Registry, text: str, *, scan: bool = False) -> set[str]:
    engine = registry.catalog.engine
    if scan:
        with engine.connect() as connection:
            query = select(col(AdapterVersionRow.id)).where(search_clause(text, None))
            ids = tuple(int(i) for i in connection.execute(query).scalars())
    else:
        ids = browse_versions(engine, ListFilter(), search=text, size=500).ids
    return {v.ref for v in registry.catalog.get_many(ids)}


def test_index_and_scan_agree_on_substrings(registry: Registry, tmp_path: Path) -> None:
    _fill(registry, tmp_path)
    with registry.catalog.engine.connect() as connection:
        kind = search_index.kind(connection)
    dialect = registry.catalog.engine.dialect.name
    assert kind == {"sqlite": "fts5-trigram", "postgresql": "pg_trgm"}[dialect]
    for text in QUERIES:
        expected = _expected(registry, text)
        assert _search(registry, text) == expected, text
        assert _search(registry, text, scan=True) == expected, text
    assert _search(registry, "lora") == {"team/chat-lora@1"}
    assert _search(registry, "ab") == {"team/code-ia3@1"}  # a tag value too short to index


def test_index_follows_changes(registry: Registry, tmp_path: Path) -> None:
    _fill(registry, tmp_path)
    registry.set_tags("solo", {"flavour": "vanilla"}, remove=["stage"])
    assert _search(registry, "vanil") == {"solo@1"} and _search(registry, "dev") == set()
    registry.describe("solo", "Now with Turbo mode")
    assert _search(registry, "turbo") == {"solo@1"}
    registry.describe("team/chat-lora", "")
    assert _search(registry, "summar") == set()
    registry.remove("team/code-ia3@1", force=True)
    assert _search(registry, "a_b") == set() and _search(registry, "ia3") == set()


def test_schema4_catalog_with_versions_upgrades_to_the_index(
    registry: Registry, tmp_path: Path
) -> None:
    _fill(registry, tmp_path)
    home = registry.home.root
    # Make it exactly the schema-4 catalog: step 5 only adds the search index objects
    # and the status index.
    with registry.catalog.engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            for (trigger,) in connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%search%'"
            ).all():
                connection.exec_driver_sql(f"DROP TRIGGER {trigger}")
            connection.exec_driver_sql(f"DROP TABLE {search_index.FTS_TABLE}")
        else:
            for name in ("name", "description"):
                connection.exec_driver_sql(f"DROP INDEX ix_adapter_versions_{name}_trgm")
            for name in ("key", "value"):
                connection.exec_driver_sql(f"DROP INDEX ix_tags_{name}_trgm")
        connection.exec_driver_sql("DROP INDEX ix_adapter_versions_status_name")
        connection.exec_driver_sql("DELETE FROM schema_info WHERE key = 'search_index'")
        connection.exec_driver_sql(
            "UPDATE schema_info SET value = '4' WHERE key = 'schema_version'"
        )
    registry.close()

    runner = CliRunner()
    dry = runner.invoke(main, ["--registry", str(home), "migrate", "--dry-run"])
    assert dry.exit_code == 0 and "index names, descriptions and tags for search" in dry.stdout
    done = runner.invoke(main, ["--registry", str(home), "migrate"])
    assert done.exit_code == 0, done.output
    assert "migrated from schema 4 to schema 5" in done.stdout
    with Registry.open(home) as upgraded:
        with upgraded.catalog.engine.connect() as connection:
            assert search_index.kind(connection) in ("fts5-trigram", "pg_trgm")
        for text in QUERIES:
            assert _search(upgraded, text) == _expected(upgraded, text), text
        upgraded.set_tags("solo", {"after": "upgrade-marker"})
        assert _search(upgraded, "grade-mark") == {"solo@1"}


def test_without_the_index_search_scans(registry: Registry, tmp_path: Path) -> None:
    # An SQLite without FTS5, or a PostgreSQL without pg_trgm, records no index.
    _fill(registry, tmp_path)
    with registry.catalog.engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM schema_info WHERE key = 'search_index'")
    for text in QUERIES:
        assert _search(registry, text) == _expected(registry, text), text


@pytest.mark.parametrize("text", ["ab", "ge\nprod", "", 'x"y'])
def test_phrase_only_when_the_index_answers_exactly(text: str) -> None:
    phrase = search_index.fts_phrase(text)
    if len(text) < 3 or "\n" in text:
        assert phrase is None
    else:
        assert phrase == '"x""y"'


def test_broad_searches_walk_the_listing_order(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fill(registry, tmp_path)
    narrow = browse_versions(registry.catalog.engine, ListFilter(), search="team", size=1)
    monkeypatch.setattr(browse, "BROAD", 0)  # every search counts as broad
    for text in QUERIES:
        assert _search(registry, text) == _expected(registry, text), text
    broad = browse_versions(registry.catalog.engine, ListFilter(), search="team", size=1)
    assert broad == narrow and broad.total == 2
    second = browse_versions(registry.catalog.engine, ListFilter(), search="team", offset=1)
    assert [v.name for v in registry.catalog.get_many(second.ids)] == ["team/code-ia3"]
