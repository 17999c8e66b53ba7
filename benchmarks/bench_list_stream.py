"""``adapters list --all`` at 100,000 versions: streamed pages against the whole list at once.

    python benchmarks/bench_list_stream.py --before /path/to/older/checkout [--versions 100000]

The catalog is bench_catalog.py's (bulk inserts of the rows push would write). Each
command runs in a new process with this checkout's code and with ``--before``'s (a
checkout whose ``list --all`` builds every result before printing), alternating, three
times each; medians of wall time to the first line of output, wall time to the end, and
peak memory (max RSS), for the table and for ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_catalog import _MEASURED, fill  # noqa: E402

KEYS = ("first_ms", "total_ms", "rss_mb")


def run_once(code: Path, args: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(ms to the first line, ms to the end, max RSS MB) of one run in a new process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-c", _MEASURED, *args],
        env={**env, "PYTHONPATH": str(code)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tempfile.gettempdir(),
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.readline()
    first = (time.perf_counter() - started) * 1000
    for _ in iter(lambda: process.stdout.read(1 << 16), b""):  # type: ignore[union-attr]
        pass
    err = process.stderr.read().decode()
    if process.wait() != 0:
        raise RuntimeError(err)
    total = (time.perf_counter() - started) * 1000
    return first, total, int(err.rsplit("MAXRSS ", 1)[1].split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="the checkout to compare")
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="Build the catalog here and keep it.")
    args = parser.parse_args()

    from registry import Registry

    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-list-stream-"))
    home = work / "home"
    url = f"sqlite:///{home}/catalog.db"
    if not (home / "catalog.db").exists():
        registry = Registry.open(home, create=True, database_url=url)
        fill(registry.catalog.engine, args.versions)
        registry.close()
    env = {**os.environ, "ADAPTERS_DATABASE_URL": url}
    commands = {
        "list --all": ["--registry", str(home), "list", "--all"],
        "list --all --json": ["--registry", str(home), "list", "--all", "--json"],
    }
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for label, command in commands.items():
            for _ in range(args.repeat):
                for side, code in (("streamed", ROOT), ("before", args.before.resolve())):
                    runs = results.setdefault(f"{label} {side}", {})
                    measured = run_once(code, command, env)
                    for key, value in zip(KEYS, measured, strict=True):
                        runs.setdefault(key, []).append(value)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)

    medians = {
        label: {key: statistics.median(values) for key, values in runs.items()}
        for label, runs in results.items()
    }
    print(f"{args.versions:,} versions; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()}")
    print("| command | side | first line ms | total ms | max RSS MB |")
    print("|---|---|---|---|---|")
    for label, m in medians.items():
        command, _, side = label.rpartition(" ")
        print(
            f"| `adapters {command}` | {side} | {m['first_ms']:.0f} | {m['total_ms']:.0f} "
            f"| {m['rss_mb']:.0f} |"
        )
    for command in commands:
        new, old = medians[f"{command} streamed"], medians[f"{command} before"]
        print(
            f"| `adapters {command}` | streamed / before | {new['first_ms'] / old['first_ms']:.3f} "
            f"| {new['total_ms'] / old['total_ms']:.3f} | {new['rss_mb'] / old['rss_mb']:.3f} |"
        )
    print(json.dumps(medians))


if __name__ == "__main__":
    main()
