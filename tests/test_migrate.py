"""Upgrading a catalog made by the first release (schema 1) in place, on both backends.

The fixtures were made by that release's own code (commit 61ea738) with its own
dependencies: ``tests/data/registry-schema1/`` is a whole SQLite registry (three
versions with evals, tags, aliases and a training-data digest) and
``tests/data/catalog-schema1-postgres.sql`` a pg_dump of the same made on PostgreSQL.
See tests/data/README.md for how they were made.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlmodel import SQLModel

from registry import Registry
from registry.cli import main
from registry.errors import CatalogError
from registry.store.catalog import schema_steps as migrations
from registry.store.catalog.engine import make_engine
from registry.store.catalog.schema import SCHEMA_VERSION, status
from registry.store.catalog.search_index import FTS_TABLE
from registry.store.home import init_home

DATA = Path(__file__).parent / "data"
# What schema 1 recorded, read with the first release.
DIGESTS = {
    "chat-lora@1": "sha256:662c4db146c558b154f63a9c67965acfa898e34337a9a30624a6edeccb0790a6",
    "chat-lora@2.0": "sha256:8fdb2760b86bac010226b5768144c89928366ec16f707a6ca5eef1f48e567b94",
    "team/ia3-small@1": "sha256:c1eb75c9b3d172745ce1fffe264a244880f93a31766c401c7ce01fb54438d38e",
}
SCHEMA1_TABLES = {
    "schema_info", "base_models", "adapter_versions", "version_files", "training_data",
    "evals", "aliases", "tags", "audit_events",
}  # fmt: skip


def load_postgres_dump(url: str) -> None:
    """Restore the schema-1 dump (psql's backslash commands dropped) into ``url``."""
    sql = "\n".join(
        line
        for line in (DATA / "catalog-schema1-postgres.sql").read_text().splitlines()
        if not line.startswith("\\")
    )
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(plain, autocommit=True) as connection:
        connection.execute(sql.encode())


@pytest.fixture
def old_home(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the schema-1 registry, its catalog on the backend under test."""
    home = tmp_path / "old"
    shutil.copytree(DATA / "registry-schema1", home)
    init_home(home)  # adopts it; makes tmp/, which git does not keep
    if database_url.startswith("sqlite"):
        shutil.copy(home / "catalog.db", make_url(database_url).database or "")
    else:
        load_postgres_dump(database_url)
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", database_url)
    return home


def cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--registry", str(home), *args], catch_exceptions=False)


def shape(url: str) -> dict[str, Any]:
    """Tables with their columns (nullability), indexes, unique constraints, foreign keys;
    the search index aside (its FTS5 tables and trigram indexes are not in the metadata:
    tests/test_search_index.py checks them)."""
    engine = make_engine(url)
    try:
        found = inspect(engine)
        return {
            table: (
                {c["name"]: c["nullable"] for c in found.get_columns(table)},
                {i["name"]: tuple(i["column_names"]) for i in found.get_indexes(table)
                 if "duplicates_constraint" not in i and not i["name"].endswith("_trgm")},
                {u["name"] for u in found.get_unique_constraints(table)},
                {(tuple(f["constrained_columns"]), f["referred_table"])
                 for f in found.get_foreign_keys(table)},
            )
            for table in found.get_table_names()
            if not table.startswith(FTS_TABLE)
        }  # fmt: skip
    finally:
        engine.dispose()


def metadata_shape() -> dict[str, Any]:
    result = {}
    for name, table in SQLModel.metadata.tables.items():
        uniques = {c.name for c in table.constraints if type(c).__name__ == "UniqueConstraint"}
        result[name] = (
            {c.name: c.nullable for c in table.columns},
            {i.name: tuple(c.name for c in i.columns) for i in table.indexes},
            uniques,
            {(tuple(c.parent.name for c in [fk]), fk.column.table.name)
             for fk in table.foreign_keys},
        )  # fmt: skip
    return result


def snapshot(url: str) -> tuple[Any, dict[str, int]]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            counts = {
                t: int(connection.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar_one())
                for t in sorted(SCHEMA1_TABLES)
            }
    finally:
        engine.dispose()
    return shape(url), counts


def schema_version(url: str) -> int | None:
    engine = make_engine(url)
    try:
        return status(engine).version
    finally:
        engine.dispose()


def test_opening_a_schema1_catalog_asks_for_migrate(old_home: Path, database_url: str) -> None:
    with pytest.raises(CatalogError, match="run `adapters migrate`"):
        Registry.open(old_home)
    listed = cli(old_home, "list")
    assert listed.exit_code == 1
    assert listed.stderr.startswith("error: ") and "adapters migrate" in listed.stderr
    assert schema_version(database_url) == 1


def test_dry_run_says_what_and_changes_nothing(old_home: Path, database_url: str) -> None:
    before = snapshot(database_url)
    result = cli(old_home, "migrate", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"would migrate from schema 1 to schema {SCHEMA_VERSION}" in result.stdout
    assert "create tables" in result.stdout and "backfill version_key" in result.stdout
    assert snapshot(database_url) == before


def test_migrate_upgrades_in_place(old_home: Path, database_url: str, tmp_path: Path) -> None:
    result = cli(old_home, "migrate")
    assert result.exit_code == 0, result.output
    assert f"migrated from schema 1 to schema {SCHEMA_VERSION}" in result.stdout
    again = cli(old_home, "migrate", "--json")
    assert again.exit_code == 0 and '"changed": false' in again.stdout
    # The migrated catalog has exactly the tables, columns, indexes and keys of a new one.
    assert shape(database_url) == metadata_shape()

    with Registry.open(old_home) as reg:
        assert {v.ref: v.digest for v in reg.list()} == DIGESTS
        assert reg.get("chat-lora").version == "2.0"
        assert reg.get("chat-lora@prod").version == "1"
        assert reg.get("chat-lora>=1,<2").version == "1"
        assert reg.get("chat-lora@sha256:8fdb2760b86b").version == "2.0"
        first = reg.get("chat-lora@1")
        assert first.created_at.tzinfo is not None
        assert [(e.metric, e.value, e.dataset, e.split) for e in first.evals] == [
            ("accuracy", 0.91, "gsm8k", "test"),
            ("f1", 0.8, "gsm8k", "test"),
        ]
        assert first.tags == {"stage": "dev", "team": "nlp"}
        assert [d.sha256 for d in first.training_data] == ["0" * 63 + "1"]
        for ref, digest in DIGESTS.items():
            report = reg.verify(ref)
            assert report.ok, report.checks
            exported = reg.export(ref, tmp_path / "export" / ref.replace("/", "_"))
            assert exported.digest == digest
            for entry in reg.get(ref).manifest.files:
                blob = DATA / "registry-schema1" / "objects" / "sha256"
                original = blob / entry.sha256[:2] / entry.sha256[2:]
                assert (exported.directory / entry.path).read_bytes() == original.read_bytes()
        # Features schema 1 lacked work on the old versions.
        assert [(c.alias, c.version) for c in reg.alias_history("chat-lora")] == [
            ("prod", "1"),
            ("staging", "2.0"),
        ]
        moved = reg.set_alias("chat-lora@2.0", "prod")
        assert moved.previous == "1"
        assert [c.version for c in reg.alias_history("chat-lora", "prod")] == ["1", "2.0"]
        assert {v.ref for v in reg.list(where=["accuracy>=0.9"])} == {
            "chat-lora@1",
            "chat-lora@2.0",
        }
        assert {v.ref for v in reg.list(base="tiny/llama@main")} == {"team/ia3-small@1"}
        assert reg.lineage("chat-lora@1").descendants == ()
        removed = reg.remove("team/ia3-small@1")
        assert removed.ref == "team/ia3-small@1"
        collected = reg.gc()
        assert len(collected.blobs) == 3 and collected.kept == 4
        # The audit log is append-only now, on the migrated catalog too.
        with (
            pytest.raises(DBAPIError, match="append-only"),
            reg.catalog.engine.begin() as connection,
        ):
            connection.exec_driver_sql("DELETE FROM audit_events")
    doctor = cli(old_home, "doctor", "--deep")
    assert doctor.exit_code == 0, doctor.output


def test_failed_migration_leaves_schema_1(
    old_home: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(database_url)

    def fail(_dialect: str) -> migrations.Step:
        def run(_connection: Any) -> None:
            raise RuntimeError("injected failure in the last step")

        return migrations.Step("fail", run)

    # Every real step but the last runs, then the last one fails.
    monkeypatch.setitem(migrations.STEPS, 1, [*migrations.STEPS[1][:-1], fail])
    with pytest.raises(RuntimeError, match="injected"):
        cli(old_home, "migrate")
    assert schema_version(database_url) == 1
    assert snapshot(database_url) == before
    assert set(shape(database_url)) == SCHEMA1_TABLES


def test_newer_schema_is_refused(old_home: Path, database_url: str) -> None:
    assert cli(old_home, "migrate").exit_code == 0
    engine = make_engine(database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("UPDATE schema_info SET value = '99'")
    engine.dispose()
    with pytest.raises(CatalogError, match="newer than this release"):
        Registry.open(old_home)
    for args in (("migrate",), ("migrate", "--dry-run")):
        refused = cli(old_home, *args)
        assert refused.exit_code == 1 and "upgrade adapter-registry" in refused.stderr
    doctor = cli(old_home, "doctor")
    assert doctor.exit_code == 1 and "pip install --upgrade adapter-registry" in doctor.stdout


def test_migrate_on_a_current_catalog_does_nothing(registry: Registry) -> None:
    result = cli(registry.home.root, "migrate")
    assert result.exit_code == 0 and "already at schema" in result.stdout


def test_migrate_creates_a_catalog_in_an_empty_database(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = init_home(tmp_path / "new").root
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", database_url)
    result = cli(home, "migrate")
    assert result.exit_code == 0 and f"from empty to schema {SCHEMA_VERSION}" in result.stdout
    assert schema_version(database_url) == SCHEMA_VERSION


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'fresh.db'}"


def test_new_catalog_shape_matches_tables(fresh_url: str) -> None:
    from registry.store.catalog.catalog import Catalog

    Catalog(fresh_url, create=True).close()
    assert shape(fresh_url) == metadata_shape()
