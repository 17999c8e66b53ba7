"""Running writer processes against one registry, and checking what they leave behind.

Used by the stress and concurrency tests: adapters are written up front (tiny LoRAs,
no model), the writers are real processes (``support.stress_worker``) started together, and
``check_consistency`` asserts every invariant a concurrent run must keep.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text

from registry import Registry
from registry.admin.doctor import diagnose
from support.handmade import write_lora

TESTS = Path(__file__).resolve().parent.parent
ROOT = TESTS.parent
WORKER = "support.stress_worker"  # run with -m: tests/ is on the workers' PYTHONPATH


@dataclass(frozen=True)
class RunResult:
    reports: list[dict[str, Any]]
    seconds: float

    @property
    def pushed(self) -> list[dict[str, Any]]:
        return [p for r in self.reports for p in r["pushed"]]

    def total(self, key: str) -> int:
        return sum(r["done"][key] for r in self.reports)


def write_adapters(directory: Path, count: int, first_seed: int = 0) -> list[Path]:
    """``count`` distinct tiny LoRA directories (two blobs each, a few hundred bytes)."""
    return [
        write_lora(directory / f"a{i}", first_seed + i, r=2, hidden=8, modules=("q_proj",))
        for i in range(count)
    ]


def run_workers(
    home: Path, url: str, plans: list[list[list[str]]], work: Path, timeout: float
) -> RunResult:
    """Run one worker process per plan, all starting together; fail on any worker error."""
    plan_file = work / "plan.json"
    plan_file.write_text(json.dumps({str(i): p for i, p in enumerate(plans)}))
    go = work / "go"
    env = {
        **os.environ,
        # This checkout's registry first, then tests/ for the worker module.
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", WORKER, str(home), url, str(i), str(plan_file), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(len(plans))
    ]
    time.sleep(0.5)  # let the interpreters start; they wait for the go file
    started = time.monotonic()
    go.touch()
    reports = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=max(1.0, timeout - (time.monotonic() - started)))
            assert proc.returncode == 0, f"worker failed:\n{err[-3000:]}"
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return RunResult(reports, time.monotonic() - started)


def check_consistency(registry: Registry, result: RunResult) -> dict[str, int]:
    """Assert the invariants of a concurrent run; return the counts found."""
    versions = registry.list()
    by_digest = Counter((v.name, v.digest) for v in versions)
    pushed = result.pushed
    # Every push is present exactly once, under the version its writer was told.
    for push in pushed:
        assert by_digest[(push["name"], push["digest"])] == 1, push
    recorded = {(v.name, v.digest): v.version for v in versions}
    assert all(recorded[(p["name"], p["digest"])] == p["version"] for p in pushed)
    # Versions are unique per name, and every version is one somebody pushed.
    pairs = [(v.name, v.version) for v in versions]
    assert len(pairs) == len(set(pairs))
    assert {(p["name"], p["digest"]) for p in pushed} == set(by_digest)
    with registry.catalog.engine.connect() as connection:
        evals = int(connection.execute(text("SELECT count(*) FROM evals")).scalar_one())
        aliases = connection.execute(
            text(
                "SELECT a.name, a.alias, v.version FROM aliases a "
                "JOIN adapter_versions v ON v.id = a.version_id"
            )
        ).all()
        history = connection.execute(
            text("SELECT name, alias, version FROM alias_history ORDER BY id")
        ).all()
        moves = int(
            connection.execute(
                text("SELECT count(*) FROM audit_events WHERE action = 'alias'")
            ).scalar_one()
        )
    assert evals == result.total("push") + result.total("eval")  # a push records one eval
    # The alias table is where the history of each alias ends.
    last: dict[tuple[str, str], str | None] = {}
    for name, alias, version in history:
        last[(name, alias)] = version
    assert {(n, a): v for n, a, v in aliases} == {k: v for k, v in last.items() if v is not None}
    # No orphan blobs, no temp files, and the doctor (re-hashing) finds nothing.
    stored = set(registry.blobs.iter_digests())
    assert stored == registry.catalog.referenced_blobs()
    assert list(registry.blobs.staging_files()) == []
    assert not registry.home.tmp_dir.exists() or list(registry.home.tmp_dir.iterdir()) == []
    report = diagnose(registry.home, registry.catalog.url, deep=True)
    assert report.clean and not report.findings, report.findings
    return {
        "pushes": len(pushed),
        "versions": len(versions),
        "names": len({v.name for v in versions}),
        "evals_recorded": result.total("eval"),
        "eval_rows": evals,
        "alias_moves": result.total("alias"),
        "alias_history_rows": len(history),
        "alias_audit_events": moves,
        "gc_runs": result.total("gc"),
        "gc_deleted": sum(r["done"]["gc_deleted"] for r in result.reports),
        "conflicts_retried": result.total("conflicts"),
        "blobs": len(stored),
    }
