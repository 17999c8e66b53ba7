"""Schema versioning and migrations.

A new catalog is created at ``SCHEMA_VERSION`` from the table definitions. An
older one is upgraded in place by running each step of ``MIGRATIONS`` in order,
all in one transaction, so a failed upgrade leaves the catalog as it was.
A catalog newer than this release is refused rather than misread.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel, col

from registry.errors import CatalogError, CatalogMissingError
from registry.store.catalog import search_index, tables
from registry.store.catalog.engine import WRITE_OPTION, redacted_url
from registry.store.catalog.schema_steps import STEPS, upgrade_one
from registry.store.catalog.schema_version import SCHEMA_VERSION as SCHEMA_VERSION
from registry.store.catalog.schema_version import VERSION_KEY

CREATED_KEY = "created_at"  # seconds since the epoch
_SCHEMA_LOCK_ID = 7_245_001

# MIGRATIONS[n] upgrades a catalog from schema version n to n + 1.
Migration = Callable[[Connection], None]
MIGRATIONS: dict[int, Migration] = {
    found: partial(upgrade_one, found=found) for found in STEPS  # steps in migrations.py
}


@dataclass(frozen=True)
class SchemaStatus:
    version: int | None  # None: an empty database
    current: int

    @property
    def up_to_date(self) -> bool:
        return self.version == self.current


def read_version(connection: Connection) -> int | None:
    if not inspect(connection).has_table(tables.SchemaInfo.__tablename__):
        return None
    row = connection.execute(
        select(col(tables.SchemaInfo.value)).where(col(tables.SchemaInfo.key) == VERSION_KEY)
    ).first()
    if row is None:
        raise CatalogError("the catalog has a schema_info table but no schema version")
    try:
        return int(row[0])
    except ValueError:
        raise CatalogError(f"the catalog's schema version {row[0]!r} is not a number") from None


def status(engine: Engine) -> SchemaStatus:
    with engine.connect() as connection:
        return SchemaStatus(read_version(connection), SCHEMA_VERSION)


def ensure_schema(engine: Engine, *, upgrade: bool = False, create: bool = True) -> SchemaStatus:
    """Create a new catalog (only with ``create``), or check (and with ``upgrade``
    migrate) an existing one."""
    with engine.connect() as connection:
        connection = connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            if connection.dialect.name == "postgresql":
                # Serialise concurrent first opens: both would try to create the tables.
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_SCHEMA_LOCK_ID})")
            found = read_version(connection)
            if found is None:
                if not create:
                    url = redacted_url(engine.url.render_as_string(hide_password=False))
                    raise CatalogMissingError(
                        f"the catalog database {url} holds no "
                        "catalog; restore it from a backup (`adapters doctor` explains), or "
                        "start an empty one with `adapters init --new-catalog`"
                    )
                _refuse_foreign_tables(connection)
                SQLModel.metadata.create_all(connection)
                search_index.create(connection)  # not a table of the metadata
                connection.execute(
                    tables.SchemaInfo.__table__.insert(),  # type: ignore[attr-defined]
                    [
                        {"key": VERSION_KEY, "value": str(SCHEMA_VERSION)},
                        # When the catalog began: blobs older than an empty catalog are
                        # another catalog's (store/catalog_match.py).
                        {"key": CREATED_KEY, "value": f"{time.time():.3f}"},
                    ],
                )
                return SchemaStatus(SCHEMA_VERSION, SCHEMA_VERSION)
            if found > SCHEMA_VERSION:
                raise CatalogError(
                    f"the catalog has schema version {found}, newer than this release "
                    f"understands ({SCHEMA_VERSION}); upgrade adapter-registry"
                )
            if found < SCHEMA_VERSION:
                if not upgrade:
                    raise CatalogError(
                        f"the catalog has schema version {found}, this release needs "
                        f"{SCHEMA_VERSION}; run `adapters migrate` (back up the catalog first)"
                    )
                for step in range(found, SCHEMA_VERSION):
                    MIGRATIONS[step](connection)
                connection.execute(
                    tables.SchemaInfo.__table__.update()  # type: ignore[attr-defined]
                    .where(tables.SchemaInfo.key == VERSION_KEY)
                    .values(value=str(SCHEMA_VERSION))
                )
            return SchemaStatus(found, SCHEMA_VERSION)


def _refuse_foreign_tables(connection: Connection) -> None:
    ours = set(SQLModel.metadata.tables)
    clashing = sorted(set(inspect(connection).get_table_names()) & ours)
    if clashing:
        raise CatalogError(
            "the database has tables named like the catalog's but no schema version "
            f"({', '.join(clashing)}); point ADAPTERS_DATABASE_URL at an empty database"
        )
