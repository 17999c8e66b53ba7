"""Stress: 8 writer processes x 200 operations against one registry, on each backend.

Each worker pushes 100 small distinct adapters to two shared names (so version numbers
are contended), records 60 evals, moves shared aliases 36 times and runs gc 4 times
while the others push. Afterwards every push is present exactly once, versions are
unique per name, the alias table is where the alias history ends, no blob is orphaned
or missing, no temp file is left, and ``doctor --deep`` finds nothing.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from support.stress import check_consistency, run_workers, write_adapters

from registry import Registry

WORKERS = 8
OPS = 200
PUSHES, EVALS, ALIASES, GCS = 100, 60, 36, 4
NAMES = ("stress/alpha", "stress/beta")


def plans(adapters: list[Path]) -> list[list[list[str]]]:
    assert PUSHES + EVALS + ALIASES + GCS == OPS
    result = []
    for worker in range(WORKERS):
        rng = random.Random(worker)
        mine = adapters[worker * PUSHES : (worker + 1) * PUSHES]
        pushes = [["push", str(d), NAMES[i % 2]] for i, d in enumerate(mine)]
        rest: list[list[str]] = (
            pushes[2:]
            + [["eval", rng.choice(NAMES)] for _ in range(EVALS)]
            + [["alias", rng.choice(NAMES), rng.choice(("prod", "canary"))] for _ in range(ALIASES)]
            + [["gc"] for _ in range(GCS)]
        )
        rng.shuffle(rest)
        result.append(pushes[:2] + rest)  # a version of each name first, to aim evals at
    return result


@pytest.mark.slow
def test_eight_writers(registry: Registry, tmp_path: Path) -> None:
    adapters = write_adapters(tmp_path / "adapters", WORKERS * PUSHES)
    work = tmp_path / "work"
    work.mkdir()
    result = run_workers(
        registry.home.root, registry.catalog.url, plans(adapters), work, timeout=900
    )
    counts = check_consistency(registry, result)
    assert counts["pushes"] == counts["versions"] == WORKERS * PUSHES
    assert counts["evals_recorded"] == WORKERS * EVALS
    assert counts["alias_moves"] == WORKERS * ALIASES
    assert counts["gc_runs"] == WORKERS * GCS
    # Versions of each name are exactly 1..N: none skipped, none doubled.
    for name in NAMES:
        numbers = sorted(int(v.version) for v in registry.list(name=name))
        assert numbers == list(range(1, len(numbers) + 1))
    backend = registry.catalog.engine.dialect.name
    ops = WORKERS * OPS
    print(
        f"\nstress[{backend}]: {WORKERS} processes x {OPS} operations = {ops} in "
        f"{result.seconds:.1f} s ({ops / result.seconds:.0f} ops/s); "
        + ", ".join(f"{k} {v}" for k, v in counts.items())
    )
