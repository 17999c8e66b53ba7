"""Namespace ranges and name order of the browse queries under a linguistic collation.

A PostgreSQL database in a locale that ignores punctuation at the first level (glibc's
en_US, ICU with ``ka-shifted``) orders ``team/a`` after ``team0``: a plain
``name >= 'team/' AND name < 'team0'`` then finds nothing. The browse queries compare
names by code point (``COLLATE "C"``); this test gives the name columns such a collation
and checks they still find exactly the namespace, in code-point order.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select
from support.handmade import write_adapter

from registry import Registry
from registry.store.catalog.browse import audit_page, browse_versions
from registry.store.catalog.catalog import ListFilter
from registry.store.catalog.tables import AdapterVersionRow

NAMES = ["team/a", "team-x/b", "team0/c", "team.z/d", "teamb/e", "team/zz", "team/9"]


def test_namespace_range_ignores_the_locale(registry: Registry, tmp_path: Path) -> None:
    for seed, name in enumerate(NAMES):
        registry.push(write_adapter(tmp_path / str(seed), seed=seed), name=name)
    engine = registry.catalog.engine
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql(
                "CREATE COLLATION shifted (provider = icu, locale = 'und-u-ka-shifted')"
            )
            for table in ("adapter_versions", "audit_events"):
                connection.exec_driver_sql(
                    f"ALTER TABLE {table} ALTER COLUMN name TYPE VARCHAR(96) COLLATE shifted"
                )
        with engine.connect() as connection:  # the collation does mislead a plain range
            v = AdapterVersionRow.__table__.c  # type: ignore[attr-defined]
            plain = select(v.name).where(v.name >= "team/", v.name < "team0")
            assert list(connection.execute(plain).scalars()) == []
    page = browse_versions(engine, ListFilter(), namespace="team")
    assert [v.name for v in registry.catalog.get_many(page.ids)] == ["team/9", "team/a", "team/zz"]
    assert page.total == 3
    everything = browse_versions(engine, ListFilter())
    names = [v.name for v in registry.catalog.get_many(everything.ids)]
    assert names == sorted(NAMES)  # code-point order, as Python sorts
    events = audit_page(engine, namespace="team")
    assert {row.name for row in events} == {"team/9", "team/a", "team/zz"}
