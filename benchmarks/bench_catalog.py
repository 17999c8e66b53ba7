"""Catalog queries at 100,000 versions on SQLite: filtered listing and specifier resolution.

    python benchmarks/bench_catalog.py [--versions 100000] [--repeat 20]

The catalog is filled with bulk inserts (the rows push would write, without the
blobs): 20 base models, 1 "hot" name with 10 % of all versions and the rest in
names of 100 versions each, two files, one training-data digest, a tag and one or
two accuracy evals (a re-evaluation is appended for every third version) per
version, and a `prod` alias per name.

Measured in-process through the Python API (median of ``--repeat`` warm runs, wall
clock and this process's CPU time, the latter being what matters on a busy machine):

- ``list(base=X, where=["accuracy>=0.9"])``, typed results included, and its top 20;
- resolving ``NAME>=1.0,<2`` for a typical name and for the hot name, and the hot
  name's latest version;
- the same listing through the ``adapters`` CLI in a new process (startup included);
- a plain ``adapters list`` (paged: the first 50 of every version) and ``adapters list
  --all`` (every version, what ``list`` printed before it paged), each in a new process
  with its peak memory (max RSS).

Every SELECT the listing and the hot resolution run is captured and its SQLite plan
printed, to show that each step is an index search.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASES = 20
TYPICAL_VERSIONS = 100
HOT_NAME = "hot/adapter"
LIST_BASE = "org/base-07"
BATCH = 5_000


def median_ms(action: Callable[[], object], repeat: int) -> float:
    """Median wall-clock milliseconds over ``repeat`` warm runs."""
    return _median(action, repeat, time.perf_counter)


def median_cpu_ms(action: Callable[[], object], repeat: int) -> float:
    """Median CPU milliseconds of this process: what the work costs even when other
    processes compete for the cores (SQLite runs in-process, so it is included)."""
    return _median(action, repeat, time.process_time)


def _median(action: Callable[[], object], repeat: int, clock: Callable[[], float]) -> float:
    action()  # warm caches once
    times = []
    for _ in range(repeat):
        start = clock()
        action()
        times.append((clock() - start) * 1000)
    return statistics.median(times)


def _manifest_json(index: int, base: int, data_hex: str) -> tuple[str, str, list[Any]]:
    from registry.store.manifest import BaseModelRef, FileEntry, Manifest, TrainingDataRef

    weights = f"{index:064x}"
    config = f"{(index % 7) + 1:064x}"
    manifest = Manifest(
        method="lora",
        source_format="peft",
        config={
            "peft_type": "LORA",
            "task_type": "CAUSAL_LM",
            "base_model_name_or_path": f"org/base-{base:02d}",
            "r": 8 * (1 + index % 4),
            "lora_alpha": 16,
            "lora_dropout": 0.05,
            "target_modules": ["k_proj", "o_proj", "q_proj", "v_proj"],
            "use_rslora": False,
            "use_dora": False,
        },
        files=(
            FileEntry("adapter_config.json", config, 700, "config"),
            FileEntry("adapter_model.safetensors", weights, 13_000_000, "weights"),
        ),
        base_model=BaseModelRef(f"org/base-{base:02d}", "main", f"sha256:{base:064x}"),
        training_data=(TrainingDataRef(data_hex, "file"),),
    )
    files = [(f.path, f.sha256, f.size, f.role) for f in manifest.files]
    return manifest.canonical_bytes().decode(), manifest.digest, files


def _version_plan(total: int) -> list[tuple[str, str]]:
    hot = total // 10
    plan = [(HOT_NAME, f"{i // 100}.{i % 100}") for i in range(hot)]
    rest = total - hot
    for i in range(rest):
        name = f"team-{i // TYPICAL_VERSIONS:04d}/adapter"
        version = i % TYPICAL_VERSIONS
        plan.append((name, f"{version // 10}.{version % 10}"))
    return plan


def fill(engine: Any, total: int, seed: int = 0) -> dict[str, int]:
    from registry.store.catalog import tables as t
    from registry.store.catalog.version_order import version_key

    rng = random.Random(seed)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    plan = _version_plan(total)
    counts = {"versions": 0, "evals": 0, "files": 0}
    highest: dict[str, int] = {}
    with engine.begin() as connection:
        for offset in range(0, len(plan), BATCH):
            versions, files, data, evals, tags = [], [], [], [], []
            for index in range(offset, min(offset + BATCH, len(plan))):
                row_id = index + 1
                name, version = plan[index]
                base = index % BASES
                data_hex = f"{rng.getrandbits(256):064x}"
                text, digest, file_rows = _manifest_json(index, base, data_hex)
                created = start + timedelta(seconds=index)
                versions.append(
                    {
                        "id": row_id,
                        "name": name,
                        "version": version,
                        "version_key": version_key(version),
                        "digest": digest,
                        "method": "lora",
                        "source_format": "peft",
                        "base_name": f"org/base-{base:02d}",
                        "base_revision": "main",
                        "base_fingerprint": f"sha256:{base:064x}",
                        "manifest": text,
                        "size_bytes": 13_000_700,
                        "status": "active",
                        "created_at": created,
                        "created_by": "bench@host",
                    }
                )
                files += [
                    {"version_id": row_id, "path": p, "sha256": s, "size": z, "role": r}
                    for p, s, z, r in file_rows
                ]
                data.append(
                    {
                        "version_id": row_id,
                        "sha256": data_hex,
                        "kind": "file",
                        "source": "train.jsonl",
                        "files": 1,
                        "size": 1,
                    }
                )
                scores = [rng.uniform(0.5, 1.0)] + (
                    [rng.uniform(0.5, 1.0)] if index % 3 == 0 else []
                )
                for score in scores:
                    evals.append(
                        {
                            "version_id": row_id,
                            "metric": "accuracy",
                            "value": score,
                            "dataset": "gsm8k",
                            "split": "test",
                            "notes": "",
                            "recorded_at": created,
                            "actor": "bench@host",
                        }
                    )
                evals.append(
                    {
                        "version_id": row_id,
                        "metric": "f1",
                        "value": rng.uniform(0.3, 0.9),
                        "dataset": "squad",
                        "split": "",
                        "notes": "",
                        "recorded_at": created,
                        "actor": "bench@host",
                    }
                )
                tags.append({"version_id": row_id, "key": "team", "value": f"t{index % 13}"})
                highest[name] = row_id
            connection.execute(t.AdapterVersionRow.__table__.insert(), versions)  # type: ignore[attr-defined]
            connection.execute(t.VersionFileRow.__table__.insert(), files)  # type: ignore[attr-defined]
            connection.execute(t.TrainingDataRow.__table__.insert(), data)  # type: ignore[attr-defined]
            connection.execute(t.EvalRow.__table__.insert(), evals)  # type: ignore[attr-defined]
            connection.execute(t.TagRow.__table__.insert(), tags)  # type: ignore[attr-defined]
            counts["versions"] += len(versions)
            counts["evals"] += len(evals)
            counts["files"] += len(files)
        connection.execute(
            t.AliasRow.__table__.insert(),  # type: ignore[attr-defined]
            [
                {"name": n, "alias": "prod", "version_id": i, "updated_at": start}
                for n, i in highest.items()
            ],
        )
    counts["names"] = len(highest)
    return counts


def executed_plans(engine: Any, action: Callable[[], object]) -> list[str]:
    """EXPLAIN QUERY PLAN of every SELECT ``action`` runs, with its real parameters."""
    from sqlalchemy import event

    seen: list[tuple[str, Any]] = []

    def record(statement: str) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, ()))

    # Traced by SQLite itself (with the values bound), as the catalog hands plain SQL to
    # pysqlite directly: on connections opened for this, then dropped.
    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(record)

    engine.dispose()
    event.listen(engine, "connect", trace)
    try:
        action()
    finally:
        event.remove(engine, "connect", trace)
        engine.dispose()
    lines = []
    with engine.connect() as connection:
        for statement, params in seen:
            flat = " ".join(statement.split())
            shown = flat if len(flat) <= 160 else flat[:157] + "..."
            lines.append(shown)
            rows = connection.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params).all()
            depth = {0: 0}
            for step, parent, _unused, detail in rows:
                depth[step] = depth.get(parent, 0) + 1
                lines.append("  " * depth[step] + str(detail))
    return lines


_MEASURED = (
    "import atexit, resource, runpy, sys\n"
    "atexit.register(lambda: sys.stderr.write("
    "'MAXRSS %d\\n' % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss))\n"
    "sys.argv = ['adapters', *sys.argv[1:]]\n"
    "runpy.run_module('registry.cli', run_name='__main__')\n"
)


def cli_with_memory(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall ms, max RSS in MB) of one CLI run in a new process: the median of three."""
    runs = []
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _MEASURED, *command[3:]],
            env=env,
            check=True,
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
        )
        wall = (time.perf_counter() - started) * 1000
        rss_kb = int(done.stderr.rsplit("MAXRSS ", 1)[1].split()[0])
        runs.append((wall, rss_kb / 1024))
    return sorted(runs)[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", type=Path, help="Build the catalog here and keep it.")
    args = parser.parse_args()

    from registry import Registry

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-catalog-"))
    home = work / "home"
    url = f"sqlite:///{home}/catalog.db"
    typical = "team-0003/adapter"
    where = ["accuracy>=0.9"]
    try:
        started = time.perf_counter()
        registry = Registry.open(home, create=True, database_url=url)
        counts = fill(registry.catalog.engine, args.versions)
        fill_s = time.perf_counter() - started
        listed = registry.list(base=LIST_BASE, where=where)
        queries: dict[str, Callable[[], object]] = {
            "list": lambda: registry.list(base=LIST_BASE, where=where),
            "top20": lambda: registry.list(base=LIST_BASE, where=where, sort="accuracy", limit=20),
            "typical": lambda: registry.get(f"{typical}>=1.0,<2"),
            "hot": lambda: registry.get(f"{HOT_NAME}>=1.0,<2"),
            "hot_latest": lambda: registry.get(HOT_NAME),
            "page": lambda: registry.list(limit=51),
            "count": lambda: registry.count(),
        }
        wall = {k: median_ms(q, args.repeat) for k, q in queries.items()}
        cpu = {k: median_cpu_ms(q, args.repeat) for k, q in queries.items()}
        resolved = [registry.get(f"{n}>=1.0,<2").ref for n in (typical, HOT_NAME)]
        engine = registry.catalog.engine
        list_plans = executed_plans(engine, queries["list"])
        resolve_plans = executed_plans(engine, queries["hot"])
        registry.close()

        cli = [sys.executable, "-m", "registry.cli", "--registry", str(home)]
        env = {**os.environ, "ADAPTERS_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
        command = [*cli, "list", "--base", LIST_BASE, "--where", where[0], "--json"]
        cli_repeat = max(3, args.repeat // 4)
        t_cli = median_ms(
            lambda: subprocess.run(command, check=True, capture_output=True, env=env), cli_repeat
        )
        paged = cli_with_memory([*cli, "list"], env)
        everything = cli_with_memory([*cli, "list", "--all"], env)
        t_cli_help = median_ms(
            lambda: subprocess.run([*cli, "--help"], check=True, capture_output=True, env=env),
            cli_repeat,
        )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    hot_count = args.versions // 10
    labels = {
        "list": f"list(base={LIST_BASE}, where=accuracy>=0.9) -> {len(listed)} versions",
        "top20": "the same, sort=accuracy, limit=20",
        "typical": f"resolve {typical}>=1.0,<2 ({TYPICAL_VERSIONS} versions)",
        "hot": f"resolve {HOT_NAME}>=1.0,<2 ({hot_count:,} versions)",
        "hot_latest": f"resolve {HOT_NAME} (latest of {hot_count:,})",
        "page": f"list(limit=51), name order: the CLI's default page of {args.versions:,}",
        "count": "count(): the CLI's 'N more' note",
    }
    print(
        f"catalog: {counts['versions']:,} versions in {counts['names']:,} names, "
        f"{counts['evals']:,} evals, {counts['files']:,} files; filled in {fill_s:.0f} s"
    )
    print(
        f"median of {args.repeat} warm runs; load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} CPU(s)"
    )
    print("| query (Python API, in-process SQLite) | wall ms | CPU ms |")
    print("|---|---|---|")
    for key, label in labels.items():
        print(f"| {label} | {wall[key]:.1f} | {cpu[key]:.1f} |")
    print(f"| `adapters list --base ... --where ... --json`, new process | {t_cli:.0f} | - |")
    print(f"| `adapters --help`, new process (interpreter and imports) | {t_cli_help:.0f} | - |")
    print(
        f"\n| `adapters list` at {counts['versions']:,} versions, new process "
        "| wall ms | max RSS MB |"
    )
    print("|---|---|---|")
    print(f"| `adapters list` (first 50, note on the rest) | {paged[0]:.0f} | {paged[1]:.0f} |")
    print(f"| `adapters list --all` (every version) | {everything[0]:.0f} | {everything[1]:.0f} |")
    print(
        f"| ratio paged / all | {paged[0] / everything[0]:.3f} | {paged[1] / everything[1]:.3f} |"
    )
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
        "cli_list_ms": round(t_cli),
        "cli_help_ms": round(t_cli_help),
        "cli_list_paged": {"ms": round(paged[0]), "max_rss_mb": round(paged[1])},
        "cli_list_all": {"ms": round(everything[0]), "max_rss_mb": round(everything[1])},
        "load_average": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
