"""Shared fixtures: a hermetic environment and a registry on every catalog backend.

PostgreSQL runs when ``ADAPTERS_TEST_POSTGRES_URL`` names a server (``.ci/run``
starts one); with ``ADAPTERS_REQUIRE_POSTGRES=1`` a missing server is an error,
not a skip, so CI cannot silently test SQLite alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.server import ServedRegistry, served_registry

from registry import Registry

POSTGRES_URL_ENV = "ADAPTERS_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "ADAPTERS_REQUIRE_POSTGRES"
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every location the registry or the HF libraries use into tmp_path."""
    home = tmp_path / "home"
    monkeypatch.setenv("ADAPTERS_HOME", str(home))
    monkeypatch.setenv("ADAPTERS_ACTOR", "tester@ci")
    monkeypatch.delenv("ADAPTERS_DATABASE_URL", raising=False)
    monkeypatch.delenv("ADAPTERS_DEBUG", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("ADAPTERS_CACHE_DIR", str(tmp_path / "remote-cache"))
    monkeypatch.delenv("ADAPTERS_URL", raising=False)
    monkeypatch.delenv("ADAPTERS_TOKEN", raising=False)
    return home


def _postgres_database() -> Iterator[str]:
    admin_url = os.environ.get(POSTGRES_URL_ENV)
    if not admin_url:
        if os.environ.get(REQUIRE_POSTGRES_ENV) == "1":
            pytest.fail(f"{REQUIRE_POSTGRES_ENV}=1 but {POSTGRES_URL_ENV} is not set")
        pytest.skip(f"no PostgreSQL test server ({POSTGRES_URL_ENV} unset)")
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"adapters_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty catalog database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog-test.db'}"
    else:
        yield from _postgres_database()


@pytest.fixture
def registry(
    database_url: str, hermetic_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Registry]:
    """A new registry in the hermetic home, on each catalog backend.

    ``ADAPTERS_DATABASE_URL`` is set too, so CLI runs in the same test share it.
    """
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", database_url)
    reg = Registry.open(hermetic_env, create=True)
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def sqlite_registry(hermetic_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    """A new registry on SQLite only, for tests whose subject does not depend on the backend."""
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", f"sqlite:///{hermetic_env.parent / 'sqlite.db'}")
    reg = Registry.open(hermetic_env, create=True)
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedRegistry]:
    """A real ``adapters server`` process (one per test module and backend) over a registry
    of its own, with a token per role (``served.tokens``); see tests/support/server.py."""
    root = tmp_path_factory.mktemp("served")
    databases = (
        iter([f"sqlite:///{root / 'catalog.db'}"])
        if request.param == "sqlite"
        else _postgres_database()
    )
    url = next(databases)
    try:
        with served_registry(root / "home", url) as running:
            yield running
    finally:
        for _ in databases:  # drops the PostgreSQL database
            pass
