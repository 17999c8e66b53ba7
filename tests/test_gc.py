"""gc: unreferenced blobs go, referenced and leased ones stay, even while pushes run;
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import WITH_OBJECT_STORES
from sqlalchemy import text
from support.handmade import write_lora
from support.lifecycle import run

from registry import Registry
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.history import utcnow
from registry.store.gc import PushLeases
from registry.store.leases import LEASE_EXPIRY, take_lease

ROOT = Path(__file__).resolve().parent.parent


def lease_rows(registry: Registry) -> int:
    with registry.catalog.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM blob_leases")).scalar_one())


def test_dry_run_lists_and_deletes_nothing(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_lora(tmp_path / "a", 1), name="x")
    orphan = registry.blobs.put_bytes(b"orphan bytes")
    dry = registry.gc(dry_run=True)
    assert [(b.sha256, b.size) for b in dry.blobs] == [(orphan.sha256, 12)]
    assert dry.kept == 2 and dry.bytes == 12
    shown = run("gc", "--dry-run")
    assert shown.exit_code == 0
    assert f"sha256:{orphan.sha256}" in shown.stdout and "12 B" in shown.stdout
    assert "would delete 1 blob and 0 temp files" in shown.stdout
    as_json = json.loads(run("gc", "--dry-run", "--json").stdout)
    assert as_json["blobs"] == [{"sha256": orphan.sha256, "size": 12}]
    assert registry.blobs.exists(orphan.sha256)
    assert [e.action for e in registry.log()] == ["push"]


def test_gc_deletes_only_unreferenced_blobs(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_lora(tmp_path / "a", 1), name="x")
    registry.push(write_lora(tmp_path / "b", 2), name="y")
    orphans = [registry.blobs.put_bytes(f"orphan {i}".encode()).sha256 for i in range(3)]
    done = run("gc")
    assert done.exit_code == 0 and "deleted 3 blobs" in done.stdout  # the summary is data: stdout
    assert not any(registry.blobs.exists(o) for o in orphans)
    assert all(registry.verify(v.ref).ok for v in registry.list())
    assert registry.gc().blobs == ()
    # Removing a version frees the blobs only it used: the shared config blob stays.
    x_files = {f.sha256 for f in registry.get("x@1").files}
    y_files = {f.sha256 for f in registry.get("y@1").files}
    assert x_files & y_files  # same adapter_config.json bytes, stored once
    registry.remove("x@1")
    assert {b.sha256 for b in registry.gc().blobs} == x_files - y_files
    assert registry.verify("y@1").ok


def test_empty_store(registry: Registry) -> None:
    result = registry.gc()
    assert (result.blobs, result.temp_files, result.kept, result.leased) == ((), (), 0, 0)


@WITH_OBJECT_STORES
def test_leased_blobs_are_kept_until_the_lease_expires(registry: Registry) -> None:
    live = registry.blobs.put_bytes(b"being pushed").sha256
    dead = registry.blobs.put_bytes(b"push crashed").sha256
    take_lease(registry.catalog.engine, "live", live)
    take_lease(
        registry.catalog.engine, "dead", dead, now=utcnow() - LEASE_EXPIRY - timedelta(minutes=1)
    )
    dry = registry.gc(dry_run=True)
    assert [b.sha256 for b in dry.blobs] == [dead] and dry.leased == 1
    result = registry.gc()
    assert [b.sha256 for b in result.blobs] == [dead]
    assert registry.blobs.exists(live) and not registry.blobs.exists(dead)
    assert lease_rows(registry) == 1  # the expired lease row is dropped too
    assert registry.log(actions=["gc"])[0].details["expired_leases"] == 1


def test_stale_temp_files_are_removed(registry: Registry) -> None:
    staging = registry.blobs.root / "sha256" / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    old_tmp, new_tmp = staging / ".tmp-old", staging / ".tmp-new"
    old_tmp.write_bytes(b"x" * 100)
    new_tmp.write_bytes(b"y")
    old_dir = registry.home.tmp_dir / "push-old"
    (old_dir / "sub").mkdir(parents=True)
    (old_dir / "sub" / "f").write_bytes(b"z" * 10)
    long_ago = time.time() - LEASE_EXPIRY.total_seconds() - 60
    for path in (old_tmp, old_dir, old_dir / "sub", old_dir / "sub" / "f"):
        os.utime(path, (long_ago, long_ago))
    dry = registry.gc(dry_run=True)
    assert {(Path(f.path).name, f.size) for f in dry.temp_files} == {
        (".tmp-old", 100),
        ("push-old", 10),
    }
    assert old_tmp.exists()
    registry.gc()
    assert not old_tmp.exists() and not old_dir.exists() and new_tmp.exists()


def test_stale_staged_uploads_are_removed_one_by_one(registry: Registry) -> None:
    # The server's staged uploads: an old one goes, a fresh one (say, uploaded for a push
    # about to be made) stays, and so does their folder.
    uploads = registry.home.tmp_dir / "uploads"
    uploads.mkdir(parents=True)
    old, fresh = uploads / ("a" * 64), uploads / ("b" * 64)
    old.write_bytes(b"o" * 7)
    fresh.write_bytes(b"f")
    long_ago = time.time() - LEASE_EXPIRY.total_seconds() - 60
    os.utime(old, (long_ago, long_ago))
    os.utime(uploads, (long_ago, long_ago))
    assert {(Path(f.path).name, f.size) for f in registry.gc(dry_run=True).temp_files} == {
        ("a" * 64, 7)
    }
    registry.gc()
    assert not old.exists() and fresh.exists() and uploads.is_dir()


# -- gc in the middle of a push ------------------------------------------------------------


def gc_before_recording(registry: Registry, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Run a complete gc after the push stored its blobs, just before it records them."""
    results: list[Any] = []
    original = Catalog.insert_version

    def insert_after_gc(self: Catalog, *args: Any, **kwargs: Any) -> Any:
        # Past the catalog-mismatch check: this is about leases (an empty catalog and
        # blobs are exactly the first push's state when leasing is switched off).
        results.append(registry.gc(trust_catalog=True))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Catalog, "insert_version", insert_after_gc)
    return results


@WITH_OBJECT_STORES
@pytest.mark.parametrize("blob_state", ["fresh", "deduplicated"])
def test_gc_during_a_push_loses_nothing(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, blob_state: str
) -> None:
    directory = write_lora(tmp_path / "a", 1)
    if blob_state == "deduplicated":
        # Left by an earlier crashed push: unreferenced, so gc wants it, and this push
        # finds it already stored instead of writing it.
        registry.blobs.put_file(directory / "adapter_model.safetensors")
    runs = gc_before_recording(registry, monkeypatch)
    pushed = registry.push(directory, name="x")
    assert len(runs) == 1 and runs[0].blobs == () and runs[0].leased == 2
    assert registry.verify(pushed.version.ref).ok
    assert lease_rows(registry) == 0  # released with the version


def test_without_leases_the_same_gc_would_lose_the_blob(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scenario above is a real race: with leasing switched off, gc deletes the
    blob the push is about to record."""
    monkeypatch.setattr(PushLeases, "take", lambda self, sha256: None)
    runs = gc_before_recording(registry, monkeypatch)
    pushed = registry.push(write_lora(tmp_path / "a", 1), name="x")
    assert len(runs[0].blobs) == 2
    assert not registry.verify(pushed.version.ref).ok


def test_failed_push_releases_its_leases(registry: Registry, tmp_path: Path) -> None:
    (registry.home.root / "policy.json").write_text(
        json.dumps({"version": 1, "rules": [{"alias": "prod", "base_fingerprint": True}]})
    )
    refused = run("push", str(write_lora(tmp_path / "a", 1)), "--alias", "prod")
    assert refused.exit_code == 1 and "base-fingerprint not met" in refused.stderr
    assert lease_rows(registry) == 0
    assert len(registry.gc().blobs) == 2  # what the refused push stored is garbage now


# -- gc and pushes in separate processes -----------------------------------------------------

PUSHER = """
import sys
from pathlib import Path
from registry import Registry
reg = Registry.open()
for i, directory in enumerate(sorted(Path(sys.argv[1]).iterdir())):
    if i % 2 == 0:
        # As if an earlier push had crashed after storing the weights: the blob is
        # garbage to gc, and this push finds it stored and deduplicates against it.
        reg.blobs.put_file(directory / "adapter_model.safetensors")
    reg.push(directory, name="race")
reg.close()
Path(sys.argv[2]).touch()
"""

COLLECTOR = """
import sys
from pathlib import Path
from registry import Registry
reg = Registry.open()
done = Path(sys.argv[1])
runs = deleted = missing = 0
while not done.exists():
    deleted += len(reg.gc().blobs)
    runs += 1
    # Nothing half-visible: every version anyone can see has every blob it names.
    for version in reg.list():
        missing += sum(not reg.blobs.exists(f.sha256) for f in version.files)
reg.close()
print(runs, deleted, missing)
"""


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_gc_running_while_another_process_pushes(registry: Registry, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    count = 24
    for i in range(count):
        write_lora(sources / f"{i:03d}", 100 + i)
    done = tmp_path / "done"
    collector = spawn(COLLECTOR, str(done))
    time.sleep(0.5)
    pusher = spawn(PUSHER, str(sources), str(done))
    try:
        _, push_err = pusher.communicate(timeout=240)
        out, collect_err = collector.communicate(timeout=240)
    finally:
        for process in (pusher, collector):
            if process.poll() is None:
                process.kill()
    assert pusher.returncode == 0, push_err
    assert collector.returncode == 0, collect_err
    runs, deleted, missing = (int(x) for x in out.split())
    assert runs > 5 and deleted > 0, "gc did not overlap the pushes"
    assert missing == 0
    versions = registry.list()
    assert len(versions) == count
    assert all(registry.verify(v.ref).ok for v in versions)
    assert lease_rows(registry) == 0
    assert registry.gc().blobs == ()
