"""The catalog on every backend: schema versioning, inserting versions, resolving, listing."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from registry.errors import CatalogError, ConflictError, NotFoundError
from registry.store.catalog import schema
from registry.store.catalog.catalog import Catalog, InsertOutcome, NewVersion
from registry.store.catalog.engine import BUSY_TIMEOUT_MS, make_engine
from registry.store.catalog.listing import ListFilter
from registry.store.catalog.schema import SCHEMA_VERSION, SchemaStatus, ensure_schema, status
from registry.store.manifest import BaseModelRef, FileEntry, Manifest
from registry.store.refs import next_version, parse_ref
from registry.store.results import TrainingDataInfo
from registry.store.scores import NewScore

ACTOR = "tester@ci"


def make_manifest(
    seed: int | str,
    *,
    method: str = "lora",
    base: str | None = "tiny/llama",
    revision: str | None = "main",
    size: int = 100,
) -> Manifest:
    tag = str(seed)
    return Manifest(
        method=method,
        source_format="peft",
        config={"r": 8, "seed": tag},
        files=(
            FileEntry("adapter_config.json", f"{tag:0>64}"[-64:], 10, "config"),
            FileEntry("adapter_model.safetensors", f"{tag:f>64}"[-64:], size, "weights"),
        ),
        base_model=BaseModelRef(base, revision),
    )


def insert(
    catalog: Catalog, name: str, manifest: Manifest, version: str | None = None, **extra: Any
) -> InsertOutcome:
    return catalog.insert_version(
        NewVersion(name=name, version=version, manifest=manifest, actor=ACTOR, **extra),
        next_version,
    )


def version_of(catalog: Catalog, outcome: InsertOutcome) -> str:
    return catalog.get_by_id(outcome.row_id).version


def execute(engine: Engine, sql: str) -> None:
    with engine.begin() as connection:
        connection.execute(text(sql))


@pytest.fixture
def catalog(database_url: str) -> Iterator[Catalog]:
    cat = Catalog(database_url, create=True)
    try:
        yield cat
    finally:
        cat.close()


@pytest.fixture
def reopen(database_url: str) -> Iterator[Callable[..., Catalog]]:
    """Open the test database again (closing every catalog opened this way at the end)."""
    opened: list[Catalog] = []

    def _open(**kwargs: Any) -> Catalog:
        cat = Catalog(database_url, create=True, **kwargs)
        opened.append(cat)
        return cat

    yield _open
    for cat in opened:
        cat.close()


@pytest.fixture
def raw_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


def table_names(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(inspect(connection).get_table_names())


# -- schema versioning ------------------------------------------------------------

# The mechanism is tested around the current version; the real steps of each
# migration are tested in test_migrate.py.
V = SCHEMA_VERSION


def test_new_database_gets_the_current_schema(raw_engine: Engine, database_url: str) -> None:
    assert status(raw_engine) == SchemaStatus(None, SCHEMA_VERSION)
    assert not status(raw_engine).up_to_date
    assert table_names(raw_engine) == set()
    catalog = Catalog(database_url, create=True)
    catalog.close()
    assert catalog.schema == SchemaStatus(V, V)
    assert status(raw_engine) == SchemaStatus(V, V)
    assert status(raw_engine).up_to_date
    assert {
        "schema_info",
        "base_models",
        "adapter_versions",
        "version_files",
        "training_data",
        "evals",
        "aliases",
        "tags",
        "audit_events",
        "base_relations",
    } <= table_names(raw_engine)


def add_marker(engine: Engine) -> None:
    execute(engine, "INSERT INTO schema_info (key, value) VALUES ('test_marker', 'kept')")


def schema_rows(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT key, value FROM schema_info ORDER BY key")).all()
    # created_at: when the catalog began (a timestamp, checked in test_catalog_safety.py);
    # search_index: which index the backend built (test_search_index.py).
    return [(row[0], row[1]) for row in rows if row[0] not in ("created_at", "search_index")]


def test_reopening_keeps_data_and_version(catalog: Catalog, reopen: Callable[..., Catalog]) -> None:
    assert schema_rows(catalog.engine) == [("schema_version", str(V))]
    add_marker(catalog.engine)
    insert(catalog, "x", make_manifest(1))
    again = reopen()
    assert again.schema == SchemaStatus(V, V)
    assert schema_rows(again.engine) == [("schema_version", str(V)), ("test_marker", "kept")]
    assert again.resolve(parse_ref("x")).digest == make_manifest(1).digest


def test_other_schema_versions_refused(
    catalog: Catalog, reopen: Callable[..., Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    # An older catalog without upgrade=True: refused, pointing at `adapters migrate`.
    with monkeypatch.context() as patch:
        patch.setattr(schema, "SCHEMA_VERSION", V + 1)
        patch.setattr(schema, "MIGRATIONS", {V: lambda connection: None})
        with pytest.raises(CatalogError) as info:
            reopen()
        assert str(info.value) == (
            f"the catalog has schema version {V}, this release needs {V + 1}; "
            "run `adapters migrate` (back up the catalog first)"
        )
        assert status(catalog.engine) == SchemaStatus(V, V + 1)
    # A newer catalog: refused, with or without upgrade.
    execute(
        catalog.engine, f"UPDATE schema_info SET value = '{V + 1}' WHERE key = 'schema_version'"
    )
    with pytest.raises(CatalogError) as info:
        reopen()
    assert str(info.value) == (
        f"the catalog has schema version {V + 1}, newer than this release understands ({V}); "
        "upgrade adapter-registry"
    )
    with pytest.raises(CatalogError, match="newer than this release"):
        reopen(upgrade=True)


def _add_notes_table(connection: Connection) -> None:
    connection.execute(text("CREATE TABLE migration_notes (id INTEGER PRIMARY KEY, note TEXT)"))
    connection.execute(text("INSERT INTO migration_notes (id, note) VALUES (1, 'from 1')"))


def test_migration_upgrades_old_catalog(
    catalog: Catalog, reopen: Callable[..., Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_marker(catalog.engine)
    calls: list[int] = []

    def step_1(connection: Connection) -> None:
        calls.append(1)
        _add_notes_table(connection)

    def step_2(connection: Connection) -> None:
        calls.append(2)
        connection.execute(text("UPDATE migration_notes SET note = 'from 2' WHERE id = 1"))

    monkeypatch.setattr(schema, "SCHEMA_VERSION", V + 2)
    monkeypatch.setattr(schema, "MIGRATIONS", {V: step_1, V + 1: step_2})
    upgraded = reopen(upgrade=True)
    assert calls == [1, 2]
    assert upgraded.schema.current == V + 2
    assert status(upgraded.engine) == SchemaStatus(V + 2, V + 2)
    with upgraded.engine.connect() as connection:
        note = connection.execute(text("SELECT note FROM migration_notes")).scalar_one()
    assert note == "from 2"
    assert schema_rows(upgraded.engine) == [("schema_version", str(V + 2)), ("test_marker", "kept")]
    # Up to date now: opening again runs nothing.
    reopen()
    assert calls == [1, 2]
    # The next release adds step 3: only that step runs.
    monkeypatch.setattr(schema, "SCHEMA_VERSION", V + 3)
    monkeypatch.setattr(
        schema, "MIGRATIONS", {V: step_1, V + 1: step_2, V + 2: lambda c: calls.append(3)}
    )
    assert reopen(upgrade=True).schema.current == V + 3
    assert calls == [1, 2, 3]
    assert status(upgraded.engine) == SchemaStatus(V + 3, V + 3)


class MigrationFailed(Exception):
    pass


def test_failing_migration_rolls_back(
    catalog: Catalog, reopen: Callable[..., Catalog], monkeypatch: pytest.MonkeyPatch
) -> None:
    add_marker(catalog.engine)

    def step_2(connection: Connection) -> None:
        connection.execute(
            text("UPDATE schema_info SET value = 'broken' WHERE key = 'test_marker'")
        )
        raise MigrationFailed("step 2 failed")

    monkeypatch.setattr(schema, "SCHEMA_VERSION", V + 2)
    monkeypatch.setattr(schema, "MIGRATIONS", {V: _add_notes_table, V + 1: step_2})
    with pytest.raises(MigrationFailed, match="step 2 failed"):
        reopen(upgrade=True)
    assert status(catalog.engine) == SchemaStatus(V, V + 2)
    assert "migration_notes" not in table_names(catalog.engine)
    assert schema_rows(catalog.engine) == [("schema_version", str(V)), ("test_marker", "kept")]
    monkeypatch.setattr(schema, "SCHEMA_VERSION", V)
    assert reopen().schema == SchemaStatus(V, V)


def test_tables_with_our_names_but_no_schema_info_refused(
    raw_engine: Engine, database_url: str
) -> None:
    execute(raw_engine, "CREATE TABLE someone_elses (id INTEGER PRIMARY KEY)")
    execute(raw_engine, "INSERT INTO someone_elses (id) VALUES (7)")
    created = {"someone_elses"}
    for table, listed in [
        ("aliases", "aliases"),
        ("adapter_versions", "adapter_versions, aliases"),
    ]:
        execute(raw_engine, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY)")
        created.add(table)
        with pytest.raises(CatalogError) as info:
            Catalog(database_url, create=True)
        assert str(info.value) == (
            "the database has tables named like the catalog's but no schema version "
            f"({listed}); point ADAPTERS_DATABASE_URL at an empty database"
        )
        assert table_names(raw_engine) == created
    # Without the clashing tables, other tables are left alone.
    execute(raw_engine, "DROP TABLE aliases")
    execute(raw_engine, "DROP TABLE adapter_versions")
    cat = Catalog(database_url, create=True)
    try:
        assert cat.schema == SchemaStatus(V, V)
        with cat.engine.connect() as connection:
            value = connection.execute(text("SELECT id FROM someone_elses")).scalar_one()
        assert value == 7
    finally:
        cat.close()


def test_unreadable_schema_version_refused(
    catalog: Catalog, reopen: Callable[..., Catalog]
) -> None:
    execute(catalog.engine, "UPDATE schema_info SET value = 'two'")
    with pytest.raises(CatalogError) as info:
        reopen()
    assert str(info.value) == "the catalog's schema version 'two' is not a number"
    execute(catalog.engine, "DELETE FROM schema_info")
    with pytest.raises(CatalogError) as info:
        reopen()
    assert str(info.value) == "the catalog has a schema_info table but no schema version"


def test_concurrent_first_opens(database_url: str) -> None:
    errors: list[BaseException] = []
    statuses: list[SchemaStatus] = []
    barrier = threading.Barrier(4)

    def open_catalog() -> None:
        try:
            barrier.wait()
            cat = Catalog(database_url, create=True)
            statuses.append(cat.schema)
            cat.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_catalog) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert statuses == [SchemaStatus(V, V)] * 4
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            count = connection.execute(text("SELECT count(*) FROM schema_info")).scalar_one()
        assert count == 3  # schema_version, created_at and search_index, once each
    finally:
        engine.dispose()


# -- engines ----------------------------------------------------------------------


def test_sqlite_uses_wal_and_busy_timeout(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    cat = Catalog(f"sqlite:///{db}", create=True)
    try:
        with cat.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2
    finally:
        cat.close()
    # WAL is a property of the file, seen by any other client too.
    plain = sqlite3.connect(db)
    try:
        assert plain.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        plain.close()
    assert BUSY_TIMEOUT_MS == 30_000


def test_sqlite_writer_waits_for_a_lock_instead_of_failing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    cat = Catalog(url, create=True)
    blocker = sqlite3.connect(tmp_path / "c.db", isolation_level=None, check_same_thread=False)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        timer = threading.Timer(0.3, lambda: blocker.execute("COMMIT"))
        timer.start()
        outcome = insert(cat, "x", make_manifest(1))
        timer.join()
        assert outcome.created
    finally:
        blocker.close()
        cat.close()


def test_bad_urls_are_catalog_errors() -> None:
    with pytest.raises(CatalogError, match="invalid database URL"):
        Catalog("not a url")
    with pytest.raises(CatalogError, match="no database driver"):
        Catalog("nosuchdb+nodriver://user:secret@host/db")


def test_driver_error_hides_the_password() -> None:
    with pytest.raises(CatalogError) as info:
        Catalog("nosuchdb://user:hunter2@host/db")
    assert "hunter2" not in str(info.value)


# -- inserting versions -----------------------------------------------------------


def test_version_allocation(catalog: Catalog) -> None:
    outcomes = [insert(catalog, "x", make_manifest(i)) for i in range(3)]
    assert [o.created for o in outcomes] == [True, True, True]
    assert [version_of(catalog, o) for o in outcomes] == ["1", "2", "3"]
    assert len({o.row_id for o in outcomes}) == 3
    other = insert(catalog, "ns/y", make_manifest(0))
    assert version_of(catalog, other) == "1"
    # Explicit versions are kept; the next automatic one follows the highest major.
    a = insert(catalog, "z", make_manifest(1), version="0.5")
    b = insert(catalog, "z", make_manifest(2), version="5")
    c = insert(catalog, "z", make_manifest(3))
    assert [version_of(catalog, o) for o in (a, b, c)] == ["0.5", "5", "6"]


def test_next_automatic_version_follows_the_highest_in_pep440_order(catalog: Catalog) -> None:
    # Read through the order key, not every version: the key's order must be PEP 440's,
    # string order ("9" > "10") or release-only order (11rc1 vs 10.post1) would differ.
    cases = {
        "p": ["1", "10", "9", "2.5"],
        "q": ["3", "10.0.post1", "11rc1", "10+local.7"],
        "r": ["1!0.1", "7", "2.0.dev3"],
        "s": ["0.1a1", "0.0.1"],
    }
    for name, versions in cases.items():
        for i, version in enumerate(versions):
            insert(catalog, name, make_manifest(f"{name}-{i}"), version=version)
        automatic = version_of(catalog, insert(catalog, name, make_manifest(f"{name}-auto")))
        assert automatic == next_version(versions), name
    assert [next_version(v) for v in cases.values()] == ["11", "12", "1!1", "1"]


def test_same_manifest_is_not_stored_twice(catalog: Catalog) -> None:
    first = insert(catalog, "x", make_manifest(1))
    insert(catalog, "x", make_manifest(2))
    again = insert(catalog, "x", make_manifest(1))
    assert again == InsertOutcome(first.row_id, created=False)
    pinned = insert(catalog, "x", make_manifest(1), version="9")
    assert pinned == InsertOutcome(first.row_id, created=False)
    assert catalog.count_versions() == 2
    assert [e.action for e in catalog.audit_events("x")] == ["push", "push"]
    # The same content under another name is a version of that name.
    other = insert(catalog, "y", make_manifest(1))
    assert other.created
    assert other.row_id != first.row_id
    assert catalog.get_by_id(other.row_id).digest == catalog.get_by_id(first.row_id).digest
    assert version_of(catalog, other) == "1"


def test_explicit_existing_version_with_other_content_conflicts(catalog: Catalog) -> None:
    cases = [("a", "1", "1"), ("b", "1", "1.0"), ("c", "1.0", "1.0.0"), ("d", "2", "v2")]
    for name, stored, requested in cases:
        first = insert(catalog, name, make_manifest(f"{name}-1"), version=stored)
        with pytest.raises(ConflictError) as info:
            insert(catalog, name, make_manifest(f"{name}-2"), version=requested)
        digest = catalog.get_by_id(first.row_id).digest
        assert str(info.value) == (
            f"{name}@{stored} already exists with other content ({digest[:19]}...); "
            "push under a new version, or omit --version to get the next one"
        )
    # An automatic version next to an existing one is never a conflict.
    assert version_of(catalog, insert(catalog, "b", make_manifest("b-3"))) == "2"
    assert catalog.count_versions() == len(cases) + 1


def test_inserted_version_is_read_back(catalog: Catalog) -> None:
    manifest = make_manifest(1, size=1000)
    data = TrainingDataInfo("e" * 64, "directory", "/data/train", 3, 4096)
    outcome = insert(
        catalog,
        "team/x",
        manifest,
        training_data=[data],
        evals=[NewScore("accuracy", 0.93, "glue", "test")],
        tags={"owner": "me", "task": "qa"},
        alias="prod",
    )
    got = catalog.get_by_id(outcome.row_id)
    assert (got.name, got.version, got.digest) == ("team/x", "1", manifest.digest)
    assert got.manifest == manifest
    assert got.size_bytes == 1010
    assert got.status == "active"
    assert got.status_reason is None
    assert got.created_by == ACTOR
    assert got.training_data == (data,)
    assert [(e.metric, e.value, e.dataset, e.split, e.actor) for e in got.evals] == [
        ("accuracy", 0.93, "glue", "test", ACTOR)
    ]
    assert got.aliases == ("prod",)
    assert got.tags == {"owner": "me", "task": "qa"}
    assert catalog.referenced_blobs() == {f.sha256 for f in manifest.files}
    [event] = catalog.audit_events("team/x")
    assert (event.action, event.name, event.version, event.actor) == (
        "push",
        "team/x",
        "1",
        ACTOR,
    )


def _run_threads(count: int, work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def raise_first(errors: list[BaseException]) -> None:
    if errors:
        raise errors[0]


def test_concurrent_inserts_get_distinct_versions(catalog: Catalog, database_url: str) -> None:
    outcomes: list[InsertOutcome] = []

    def work(thread: int) -> None:
        own = Catalog(database_url, create=True)
        try:
            for i in range(5):
                outcomes.append(insert(own, "x", make_manifest(f"{thread}-{i}")))
        finally:
            own.close()

    raise_first(_run_threads(4, work))
    assert len(outcomes) == 20
    assert all(o.created for o in outcomes)
    versions = sorted(int(version_of(catalog, o)) for o in outcomes)
    assert versions == list(range(1, 21))
    assert len({o.row_id for o in outcomes}) == 20


def test_concurrent_inserts_of_one_manifest_store_it_once(
    catalog: Catalog, database_url: str
) -> None:
    outcomes: list[InsertOutcome] = []

    def work(thread: int) -> None:
        own = Catalog(database_url, create=True)
        try:
            outcomes.append(insert(own, "x", make_manifest("same")))
        finally:
            own.close()

    raise_first(_run_threads(4, work))
    assert sum(o.created for o in outcomes) == 1
    assert len({o.row_id for o in outcomes}) == 1
    assert catalog.count_versions() == 1


# -- resolving --------------------------------------------------------------------


def add_three(catalog: Catalog) -> list[InsertOutcome]:
    """Versions 1, 2 and 3 of ``x``; ``prod`` points at 2."""
    first = insert(catalog, "x", make_manifest(1))
    second = insert(catalog, "x", make_manifest(2), alias="prod")
    third = insert(catalog, "x", make_manifest(3))
    return [first, second, third]


NOT_FOUND_CASES = [
    ("nope", "no adapter named 'nope'"),
    ("nope@1", "no adapter named 'nope'"),
    ("nope@prod", "no adapter named 'nope'"),
    (f"nope@sha256:{'a' * 12}", "no adapter named 'nope'"),
    ("nope>=1", "no adapter named 'nope'"),
    ("x@4", "x has no version 4"),
    ("x@staging", "x has no alias 'staging'"),
    ("x>=4", "x has no version matching '>=4'"),
]


RESOLVE_CASES = [
    ("x", "3"),
    ("x@1", "1"),
    ("x@2.0", "2"),
    ("x@v3", "3"),
    ("x@prod", "2"),
    ("x>=1,<3", "2"),
    ("x<=1", "1"),
    ("x!=3", "2"),
    ("x==3", "3"),
]


def test_resolve(catalog: Catalog) -> None:
    three = add_three(catalog)
    for ref, expected in RESOLVE_CASES:
        got = catalog.resolve(parse_ref(ref))
        assert (ref, got.name, got.version) == (ref, "x", expected)
        assert got.manifest == make_manifest(int(expected)), ref
    for ref, message in NOT_FOUND_CASES:
        with pytest.raises(NotFoundError) as info:
            catalog.resolve(parse_ref(ref))
        assert (ref, str(info.value)) == (ref, message)
    # Pushing with an alias moves it.
    insert(catalog, "x", make_manifest(4), alias="prod")
    assert catalog.resolve(parse_ref("x@prod")).version == "4"
    assert catalog.get_by_id(three[1].row_id).aliases == ()
    assert catalog.resolve(parse_ref("x")).aliases == ("prod",)


def test_resolve_by_digest_prefix(catalog: Catalog) -> None:
    add_three(catalog)
    insert(catalog, "y", make_manifest(9))
    hex_digest = make_manifest(2).digest.removeprefix("sha256:")
    for prefix in (hex_digest[:12], hex_digest[:30], hex_digest):
        assert catalog.resolve(parse_ref(f"x@sha256:{prefix}")).version == "2"
    absent = "0" * 12 if not hex_digest.startswith("0" * 12) else "1" * 12
    with pytest.raises(NotFoundError) as info:
        catalog.resolve(parse_ref(f"x@sha256:{absent}"))
    assert str(info.value) == f"x has no version with digest sha256:{absent}"
    # The digest of another name's version does not resolve under this name.
    other = make_manifest(9).digest.removeprefix("sha256:")
    with pytest.raises(NotFoundError, match="x has no version with digest"):
        catalog.resolve(parse_ref(f"x@sha256:{other}"))
    # Two digests sharing the prefix given: ambiguous, and more digits decide.
    execute(
        catalog.engine,
        f"UPDATE adapter_versions SET digest = 'sha256:{'0' * 12}' || version "
        "WHERE name = 'x' AND version IN ('1', '2')",
    )
    with pytest.raises(NotFoundError) as info:
        catalog.resolve(parse_ref(f"x@sha256:{'0' * 12}"))
    assert (
        str(info.value) == f"digest prefix sha256:{'0' * 12} is ambiguous for x; give more digits"
    )
    assert catalog.resolve(parse_ref(f"x@sha256:{'0' * 12}1")).version == "1"


def test_resolve_skips_yanked_unless_pinned(catalog: Catalog) -> None:
    add_three(catalog)
    execute(catalog.engine, "UPDATE adapter_versions SET status = 'yanked' WHERE version = '3'")
    assert catalog.resolve(parse_ref("x")).version == "2"
    assert catalog.resolve(parse_ref("x>=1")).version == "2"
    pinned = catalog.resolve(parse_ref("x@3"))
    assert (pinned.version, pinned.yanked) == ("3", True)
    assert catalog.resolve(parse_ref("x==3")).version == "3"
    with pytest.raises(NotFoundError, match="x has no version matching '>=3'"):
        catalog.resolve(parse_ref("x>=3"))
    execute(catalog.engine, "UPDATE adapter_versions SET status = 'yanked'")
    with pytest.raises(NotFoundError, match="x has no version that is not yanked"):
        catalog.resolve(parse_ref("x"))
    assert catalog.resolve(parse_ref("x@prod")).version == "2"


# -- listing ----------------------------------------------------------------------


def add_listing(catalog: Catalog) -> None:
    insert(catalog, "lora-b", make_manifest("a1"))
    insert(catalog, "lora_b", make_manifest("a2", method="ia3"))
    insert(catalog, "loraxb", make_manifest("a3", base="tiny/gpt2", revision="v1"))
    insert(catalog, "lora-b", make_manifest("a4", revision="dev"))
    insert(catalog, "team/lora-c", make_manifest("a5", base=None, revision=None))
    insert(catalog, "other", make_manifest("a6", method="ia3", base="tiny/gpt2", revision="v2"))


def refs_of(catalog: Catalog, **filters: Any) -> list[str]:
    return [v.ref for v in catalog.list_versions(ListFilter(**filters))]


ALL = ["lora-b@1", "lora-b@2", "lora_b@1", "loraxb@1", "other@1", "team/lora-c@1"]
LORA_B = ["lora-b@1", "lora-b@2", "lora_b@1", "loraxb@1"]

GLOB_CASES = [
    (None, ALL),
    ("", ALL),
    ("*", ALL),
    ("lora*", LORA_B),
    ("lora_b", ["lora_b@1"]),
    ("lora-b", ["lora-b@1", "lora-b@2"]),
    ("lora?b", LORA_B),
    ("lora%", []),
    ("%", []),
    ("lora%b", []),
    ("_ther", []),
    ("*b", LORA_B),
    ("team/*", ["team/lora-c@1"]),
    ("*lora*", [*LORA_B, "team/lora-c@1"]),
    ("lora", []),
    ("nothing*", []),
]


def test_list_by_name_glob_ignores_case_on_every_backend(catalog: Catalog) -> None:
    # Names are always lowercase; a glob in another case finds them on SQLite and PostgreSQL.
    add_listing(catalog)
    assert refs_of(catalog, name_glob="LORA?B") == LORA_B
    assert refs_of(catalog, name_glob="Other") == refs_of(catalog, name_glob="other")


BASE_CASES = [
    ("tiny/llama", ["lora-b@1", "lora-b@2", "lora_b@1"]),
    ("tiny/llama@main", ["lora-b@1", "lora_b@1"]),
    ("tiny/llama@dev", ["lora-b@2"]),
    ("tiny/gpt2", ["loraxb@1", "other@1"]),
    ("tiny/gpt2@v2", ["other@1"]),
    ("tiny/gpt2@main", []),
    ("tiny", []),
    ("tiny/%", []),
]

METHOD_CASES = [
    ("ia3", ["lora_b@1", "other@1"]),
    ("IA3", ["lora_b@1", "other@1"]),
    ("lora", ["lora-b@1", "lora-b@2", "loraxb@1", "team/lora-c@1"]),
    ("dora", []),
]


def test_list_filters(catalog: Catalog) -> None:
    add_listing(catalog)
    for glob, expected in GLOB_CASES:
        assert (glob, refs_of(catalog, name_glob=glob)) == (glob, expected)
    for base, expected in BASE_CASES:
        assert (base, refs_of(catalog, base=base)) == (base, expected)
    for method, expected in METHOD_CASES:
        assert (method, refs_of(catalog, method=method)) == (method, expected)
    assert refs_of(catalog, name_glob="lora*", base="tiny/llama", method="lora") == [
        "lora-b@1",
        "lora-b@2",
    ]
    assert refs_of(catalog, name_glob="lora*", method="ia3") == ["lora_b@1"]
    execute(
        catalog.engine,
        "UPDATE adapter_versions SET status = 'yanked' WHERE name = 'lora-b' AND version = '1'",
    )
    assert refs_of(catalog, name_glob="lora-b") == ["lora-b@1", "lora-b@2"]
    assert refs_of(catalog, name_glob="lora-b", include_yanked=False) == ["lora-b@2"]
    assert catalog.list_versions(ListFilter(name_glob="lora-b"))[0].yanked
    assert len(refs_of(catalog, include_yanked=False)) == len(ALL) - 1


def test_empty_catalog(catalog: Catalog) -> None:
    assert catalog.list_versions(ListFilter()) == []
    assert catalog.count_versions() == 0
    assert catalog.referenced_blobs() == set()
    assert catalog.audit_events() == []
    with pytest.raises(NotFoundError, match="no adapter version with id 999"):
        catalog.get_by_id(999)
    for ref, message in NOT_FOUND_CASES[:5]:
        with pytest.raises(NotFoundError) as info:
            catalog.resolve(parse_ref(ref))
        assert (ref, str(info.value)) == (ref, message)
    assert ensure_schema(catalog.engine) == SchemaStatus(SCHEMA_VERSION, SCHEMA_VERSION)
    assert ensure_schema(catalog.engine, upgrade=True) == SchemaStatus(
        SCHEMA_VERSION, SCHEMA_VERSION
    )


def test_a_new_version_is_returned_as_a_read_of_its_rows_would_give_it(catalog: Catalog) -> None:
    # The inserting transaction builds the version from what it wrote (no read back):
    # it must be exactly what reading the rows gives, annotations and order included.
    data = (
        TrainingDataInfo("a" * 64, "file", "train.jsonl", 1, 10),
        TrainingDataInfo("b" * 64, "given", "sha256:" + "b" * 64, 0, 0),
    )
    outcome = insert(
        catalog,
        "built",
        make_manifest(91),
        training_data=data,
        evals=[NewScore("acc", 0.5, "d", "test", "n"), NewScore("loss", 1.25)],
        tags={"zeta": "1", "alpha": "2"},
        alias="prod",
    )
    assert outcome.created and outcome.version is not None
    assert outcome.version == catalog.get_by_id(outcome.row_id)
    assert list(outcome.version.tags) == ["alpha", "zeta"]
    again = insert(catalog, "built", make_manifest(91))
    assert again == InsertOutcome(outcome.row_id, created=False)  # found, not built
    with catalog.engine.connect() as connection:
        key = connection.execute(
            text("SELECT version_key FROM adapter_versions WHERE id = :i"), {"i": outcome.row_id}
        ).scalar_one()
        events = connection.execute(
            text("SELECT action, name, version, details FROM audit_events WHERE name = 'built'")
        ).all()
    assert key is not None
    assert [tuple(e[:3]) for e in events] == [("push", "built", "1")]
    assert '"alias": "prod"' in events[0][3]
