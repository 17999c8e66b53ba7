"""``adapters migrate``: upgrade a catalog in place to this release's schema.

The steps are in ``catalog/migrations.py``; ``catalog/schema.py`` runs them in one
transaction under a lock, so two concurrent migrations cannot both upgrade, and a
failure leaves the catalog at its old version.
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.errors import CatalogError
from registry.store.catalog.engine import make_engine, redacted_url, wrap_operational
from registry.store.catalog.schema import SCHEMA_VERSION, ensure_schema, status
from registry.store.catalog.schema_steps import plan


@dataclass(frozen=True)
class MigrationResult:
    database: str  # the catalog URL, password masked
    from_version: int | None  # None: the database was empty (a new catalog was created)
    to_version: int
    steps: tuple[str, ...]  # what was done, or with dry_run what would be
    dry_run: bool

    @property
    def changed(self) -> bool:
        return self.from_version != self.to_version


def migrate(url: str, *, dry_run: bool = False) -> MigrationResult:
    """Upgrade the catalog at ``url`` to ``SCHEMA_VERSION`` (``dry_run``: only say how)."""
    engine = make_engine(url)
    try:
        with wrap_operational(engine):
            found = status(engine).version
            if found is not None and found > SCHEMA_VERSION:
                raise CatalogError(
                    f"the catalog has schema version {found}, newer than this release "
                    f"understands ({SCHEMA_VERSION}); upgrade adapter-registry"
                )
            if not dry_run:
                # Under the schema lock: another migration may have run meanwhile. A
                # database that was empty reports the creation, whoever made it.
                upgraded = ensure_schema(engine, upgrade=True).version
                found = None if found is None else upgraded
            steps = _describe(found, engine.dialect.name)
    finally:
        engine.dispose()
    return MigrationResult(redacted_url(url), found, SCHEMA_VERSION, steps, dry_run)


def _describe(found: int | None, dialect: str) -> tuple[str, ...]:
    if found is None:
        return (f"create a new catalog at schema {SCHEMA_VERSION}",)
    return tuple(
        f"{v} -> {v + 1}: {step.description}" for v, step in plan(found, SCHEMA_VERSION, dialect)
    )
