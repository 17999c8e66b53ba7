"""Concurrent writers in separate processes, on each backend: version allocation,
explicit-version races, alias moves and gc next to pushes.

Everything is decided by the database (unique constraints, transactions, row locks
and, for gc, the lease protocol), never by a lock inside one process.
"""

from __future__ import annotations

import random
from pathlib import Path

from conftest import WITH_OBJECT_STORES
from support.stress import check_consistency, run_workers, write_adapters

from registry import Registry


def work_dir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def test_writers_get_distinct_automatic_versions(registry: Registry, tmp_path: Path) -> None:
    adapters = write_adapters(tmp_path / "adapters", 4 * 15)
    plans = [
        [["push", str(d), "shared"] for d in adapters[w * 15 : (w + 1) * 15]] for w in range(4)
    ]
    result = run_workers(registry.home.root, registry.catalog.url, plans, work_dir(tmp_path), 300)
    check_consistency(registry, result)
    numbers = sorted(int(v.version) for v in registry.list(name="shared"))
    assert numbers == list(range(1, 61))


def test_one_explicit_version_one_winner(registry: Registry, tmp_path: Path) -> None:
    # Four writers each push other content as versions 1..8 of one name at the same time.
    adapters = write_adapters(tmp_path / "adapters", 4 * 8)
    plans = [
        [["pushv", str(adapters[w * 8 + i]), "race", str(i + 1)] for i in range(8)]
        for w in range(4)
    ]
    result = run_workers(registry.home.root, registry.catalog.url, plans, work_dir(tmp_path), 300)
    refused = [m for r in result.reports for m in r["refused"]]
    assert len(result.pushed) == 8 and len(refused) == 3 * 8
    # A loser is told, in one sentence, what happened and what to do.
    assert all(("already exists" in m or "another writer" in m) and "\n" not in m for m in refused)
    winners = {p["version"]: p["digest"] for p in result.pushed}
    assert {v.version: v.digest for v in registry.list(name="race")} == winners
    # A refused push wrote its blobs first (as every push does); gc takes exactly those.
    assert len(registry.gc().blobs) == len(refused)
    check_consistency(registry, result)


def test_alias_moves_and_evals_stay_consistent(registry: Registry, tmp_path: Path) -> None:
    adapters = write_adapters(tmp_path / "adapters", 4 * 4)
    plans = []
    for w in range(4):
        rng = random.Random(w)
        pushes = [["push", str(d), "moving"] for d in adapters[w * 4 : (w + 1) * 4]]
        moves = [["alias", "moving", rng.choice(("prod", "canary"))] for _ in range(25)]
        evals = [["eval", "moving"] for _ in range(10)]
        rest = moves + evals
        rng.shuffle(rest)
        plans.append(pushes + rest)
    result = run_workers(registry.home.root, registry.catalog.url, plans, work_dir(tmp_path), 300)
    counts = check_consistency(registry, result)
    assert counts["alias_moves"] == 100 and counts["evals_recorded"] == 40


@WITH_OBJECT_STORES
def test_gc_next_to_pushes_loses_nothing(registry: Registry, tmp_path: Path) -> None:
    # Two writers push while two others collect garbage in a loop; pushes of the same
    # content under other names keep reusing blobs gc is looking at.
    adapters = write_adapters(tmp_path / "adapters", 20)
    plans = [[["push", str(d), f"gc-{w}"] for d in adapters] for w in range(2)] + [
        [["gc"] for _ in range(40)] for _ in range(2)
    ]
    result = run_workers(registry.home.root, registry.catalog.url, plans, work_dir(tmp_path), 300)
    check_consistency(registry, result)
    for version in registry.list():
        assert registry.verify(version.ref).ok
