"""Upgrading a schema-2 catalog (made by the release before descriptions) to schema 3,
on SQLite and PostgreSQL, from the fixtures in tests/data (see its README)."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import make_url
from test_migrate import metadata_shape, schema_version, shape

from registry import Registry
from registry.cli import main
from registry.errors import CatalogError
from registry.store.catalog.schema import SCHEMA_VERSION
from registry.store.home import init_home

DATA = Path(__file__).parent / "data"
DIGESTS = {
    "chat-lora@1": "sha256:5eb208794ea6639b87302a205c87b7e3b2a7092c321a833c63c1b30783a44cc7",
    "chat-lora@2.0": "sha256:33345a4ad8c76ba1fb9d142210e5299b11b15f004ed70804dd09defaa33a7393",
    "team/ia3-small@1": "sha256:c24c25e8548038a36149b2e2a7e0192252379f7c2915e493e57f1e10c65c5f83",
}


@pytest.fixture
def schema2_home(database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "old"
    shutil.copytree(DATA / "registry-schema2", home)
    init_home(home)
    if database_url.startswith("sqlite"):
        shutil.copy(home / "catalog.db", make_url(database_url).database or "")
    else:
        sql = "\n".join(
            line
            for line in (DATA / "catalog-schema2-postgres.sql").read_text().splitlines()
            if not line.startswith("\\")
        )
        plain = make_url(database_url).set(drivername="postgresql")
        with psycopg.connect(plain.render_as_string(hide_password=False), autocommit=True) as c:
            c.execute(sql.encode())
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", database_url)
    return home


def cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--registry", str(home), *args], catch_exceptions=False)


def test_schema2_upgrades_to_descriptions(schema2_home: Path, database_url: str) -> None:
    # schema 3 adds descriptions; later steps (schema 4: server tokens) follow in the same run
    assert SCHEMA_VERSION >= 3
    with pytest.raises(CatalogError, match="run `adapters migrate`"):
        Registry.open(schema2_home)
    dry = cli(schema2_home, "migrate", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert f"would migrate from schema 2 to schema {SCHEMA_VERSION}" in dry.stdout
    assert "add adapter_versions.description" in dry.stdout
    assert schema_version(database_url) == 2
    done = cli(schema2_home, "migrate")
    assert done.exit_code == 0, done.output
    assert f"migrated from schema 2 to schema {SCHEMA_VERSION}" in done.stdout
    assert shape(database_url) == metadata_shape()
    with Registry.open(schema2_home) as reg:
        assert {v.ref: v.digest for v in reg.list()} == DIGESTS
        first = reg.get("chat-lora@prod")
        assert first.tags == {"stage": "dev", "team": "nlp"} and first.description is None
        assert reg.get("team/ia3-small@1").status == "yanked"
        assert reg.verify("chat-lora@1").ok
        reg.describe("chat-lora@1", "the first SQL adapter")
        reg.set_tags("chat-lora@1", {"stage": "prod"})
        again = reg.get("chat-lora@1")
        assert again.description == "the first SQL adapter" and again.tags["stage"] == "prod"
        actions = [e.action for e in reg.log("chat-lora@1")]
        assert actions[-2:] == ["describe", "tag"]
