"""Catalog queries at 100,000 versions on PostgreSQL: filtered listing and resolution.

    python benchmarks/bench_catalog_pg.py [--versions 100000] [--repeat 20]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres]

The PostgreSQL counterpart of ``bench_catalog.py`` (whose bulk fill it reuses: the
same names, bases, evals, tags and aliases, inserted with executemany in batches of
5,000, not through push). A new database is created from ``--postgres-url`` (default
``ADAPTERS_TEST_POSTGRES_URL``) and dropped afterwards; the tables are ANALYZEd after
the fill, as autovacuum would. Timings are the median of ``--repeat`` warm runs
through the Python API, wall clock (the server's work included) and this process's
CPU time. Every SELECT the listing and the hot resolution run is shown with its
``EXPLAIN ANALYZE`` plan.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_catalog import (  # noqa: E402 - after the path set-up
    HOT_NAME,
    LIST_BASE,
    TYPICAL_VERSIONS,
    fill,
    median_cpu_ms,
    median_ms,
)


def explained(engine: Any, action: Callable[[], object]) -> list[str]:
    """EXPLAIN ANALYZE of every SELECT ``action`` runs, with its real parameters."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    event.listen(engine, "before_cursor_execute", record)
    try:
        action()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    lines = []
    with engine.connect() as connection:
        for statement, params in seen:
            flat = " ".join(statement.split())
            lines.append(flat if len(flat) <= 160 else flat[:157] + "...")
            plan = connection.exec_driver_sql("EXPLAIN (ANALYZE, COSTS OFF) " + statement, params)
            # Plan lines repeat the IN lists of ids in full; the start says enough.
            lines += ["  " + (r[0] if len(r[0]) <= 160 else r[0][:157] + "...") for r in plan]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--postgres-url", default=os.environ.get("ADAPTERS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    if not args.postgres_url:
        raise SystemExit("give --postgres-url (or set ADAPTERS_TEST_POSTGRES_URL)")

    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from registry import Registry

    name = f"bench_catalog_{uuid.uuid4().hex[:10]}"
    admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
    work = Path(tempfile.mkdtemp(prefix="bench-catalog-pg-"))
    typical = "team-0003/adapter"
    where = ["accuracy>=0.9"]
    try:
        started = time.perf_counter()
        registry = Registry.open(work / "home", create=True, database_url=url)
        engine = registry.catalog.engine
        counts = fill(engine, args.versions)
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")
        fill_s = time.perf_counter() - started
        listed = registry.list(base=LIST_BASE, where=where)
        queries: dict[str, Callable[[], object]] = {
            "list": lambda: registry.list(base=LIST_BASE, where=where),
            "top20": lambda: registry.list(base=LIST_BASE, where=where, sort="accuracy", limit=20),
            "typical": lambda: registry.get(f"{typical}>=1.0,<2"),
            "hot": lambda: registry.get(f"{HOT_NAME}>=1.0,<2"),
            "hot_latest": lambda: registry.get(HOT_NAME),
        }
        wall = {k: median_ms(q, args.repeat) for k, q in queries.items()}
        cpu = {k: median_cpu_ms(q, args.repeat) for k, q in queries.items()}
        resolved = [registry.get(f"{n}>=1.0,<2").ref for n in (typical, HOT_NAME)]
        list_plans = explained(engine, queries["list"])
        resolve_plans = explained(engine, queries["hot"])
        registry.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    hot_count = args.versions // 10
    labels = {
        "list": f"list(base={LIST_BASE}, where=accuracy>=0.9) -> {len(listed)} versions",
        "top20": "the same, sort=accuracy, limit=20",
        "typical": f"resolve {typical}>=1.0,<2 ({TYPICAL_VERSIONS} versions)",
        "hot": f"resolve {HOT_NAME}>=1.0,<2 ({hot_count:,} versions)",
        "hot_latest": f"resolve {HOT_NAME} (latest of {hot_count:,})",
    }
    print(
        f"catalog: {counts['versions']:,} versions in {counts['names']:,} names, "
        f"{counts['evals']:,} evals, {counts['files']:,} files; filled in {fill_s:.0f} s"
    )
    print(
        f"median of {args.repeat} warm runs; load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPU(s)"
    )
    print("| query (Python API, PostgreSQL on loopback) | wall ms | client CPU ms |")
    print("|---|---|---|")
    for key, label in labels.items():
        print(f"| {label} | {wall[key]:.1f} | {cpu[key]:.1f} |")
    print(f"\nplans of the statements list(base={LIST_BASE}, where=accuracy>=0.9) runs:")
    print("\n".join(f"  {line}" for line in list_plans))
    print(f"plans of the statements resolving {HOT_NAME}>=1.0,<2 runs:")
    print("\n".join(f"  {line}" for line in resolve_plans))
    results = {
        **counts,
        "fill_s": round(fill_s, 1),
        "list_results": len(listed),
        "wall_ms": {k: round(v, 2) for k, v in wall.items()},
        "cpu_ms": {k: round(v, 2) for k, v in cpu.items()},
        "resolved": resolved,
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
