"""``adapters doctor``: each problem found, explained, with the command that fixes it."""

from __future__ import annotations

import json
import os
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.handmade import write_lora

from registry import Registry
from registry.admin.doctor import diagnose
from registry.cli import main
from registry.store.catalog.history import utcnow
from registry.store.catalog.schema import SCHEMA_VERSION
from registry.store.leases import LEASE_EXPIRY, take_lease


def doctor(registry: Registry, *args: str) -> Result:
    return CliRunner().invoke(
        main, ["--registry", str(registry.home.root), "doctor", *args], catch_exceptions=False
    )


def findings(registry: Registry, deep: bool = False) -> list[tuple[str, str, str]]:
    report = diagnose(registry.home, registry.catalog.url, deep=deep)
    return [(f.check, f.severity, f.fix) for f in report.findings]


@pytest.fixture
def pushed(registry: Registry, tmp_path: Path) -> Registry:
    registry.push(write_lora(tmp_path / "a", 1), name="demo", evals={"accuracy": 0.9})
    registry.push(write_lora(tmp_path / "b", 2), name="demo", alias="prod")
    return registry


def weights_blob(registry: Registry, ref: str) -> Path:
    entry = next(f for f in registry.get(ref).manifest.files if f.role == "weights")
    return registry.blobs.path(entry.sha256)


def test_a_healthy_registry_is_clean(pushed: Registry) -> None:
    result = doctor(pushed, "--deep")
    assert result.exit_code == 0, result.output
    assert "no problems found" in result.stdout and "versions 2" in result.stdout
    as_json = json.loads(doctor(pushed, "--json").stdout)
    assert as_json["clean"] is True and as_json["findings"] == []
    assert as_json["schema_version"] == SCHEMA_VERSION and as_json["counts"]["blobs_stored"] == 3


def test_missing_blob_names_versions_and_fix(pushed: Registry) -> None:
    path = weights_blob(pushed, "demo@1")
    os.chmod(path, 0o644)
    path.unlink()
    result = doctor(pushed)
    assert result.exit_code == 1
    assert "missing from the store" in result.stdout and "demo@1" in result.stdout
    assert "fix: push the original adapter directory again" in result.stdout


def test_corrupt_blob_same_size_is_found_by_plain_doctor(pushed: Registry) -> None:
    """An in-place edit keeps the size: plain doctor hashes a random sample of blobs
    (all of them in a registry this small) and says so."""
    path = weights_blob(pushed, "demo@2")
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert [(c, s) for c, s, _ in findings(pushed)] == [("blobs", "error")]
    plain = doctor(pushed)
    assert plain.exit_code == 1 and "corrupt" in plain.stdout
    assert "push the original adapter directory again" in plain.stdout
    sampled = r"hashed    a random sample of (\d+) of \1 referenced blobs \(--deep"
    assert re.search(sampled, plain.stdout)
    deep = doctor(pushed, "--deep")
    assert deep.exit_code == 1 and "corrupt" in deep.stdout


def test_plain_doctor_hashes_a_bounded_sample(
    pushed: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.admin import doctor as doctor_module

    monkeypatch.setattr(doctor_module, "SAMPLE_BLOBS", 2)
    report = diagnose(pushed.home, pushed.catalog.url)
    assert report.counts["blobs_hashed"] == 2 and report.counts["blobs_referenced"] > 2
    everything = report.counts["blobs_referenced"]
    assert diagnose(pushed.home, pushed.catalog.url, deep=True).counts["blobs_hashed"] == everything


def test_truncated_blob_is_found_without_deep(pushed: Registry) -> None:
    path = weights_blob(pushed, "demo@2")
    os.chmod(path, 0o644)
    path.write_bytes(path.read_bytes()[:-3])
    assert [(c, s) for c, s, _ in findings(pushed)] == [("blobs", "error")]


def test_unreferenced_blobs_suggest_gc(pushed: Registry) -> None:
    pushed.blobs.put_bytes(b"nobody refers to this")
    assert findings(pushed) == [("blobs", "warning", "adapters gc")]
    pushed.gc()
    assert findings(pushed) == []


def test_dangling_rows_are_found_and_repaired(pushed: Registry) -> None:
    engine = pushed.catalog.engine
    # Rows that a database without enforced foreign keys could have let in.
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        off, on = (
            ("SET session_replication_role = replica", "SET session_replication_role = origin")
            if engine.dialect.name == "postgresql"
            else ("PRAGMA foreign_keys = OFF", "PRAGMA foreign_keys = ON")
        )
        cursor.execute(off)
        cursor.execute(
            "INSERT INTO evals (version_id, metric, value, dataset, split, notes, recorded_at, "
            "actor) VALUES (999, 'accuracy', 0.5, '', '', '', '2026-01-01 00:00:00', 'x')"
        )
        cursor.execute("INSERT INTO tags VALUES (998, 'k', 'v')")
        raw.commit()
        cursor.execute(on)
        raw.commit()
    finally:
        raw.close()
    found = findings(pushed)
    assert found == [("rows", "error", "adapters doctor --repair")] * 2
    repaired = doctor(pushed, "--repair")
    assert repaired.exit_code == 0, repaired.output
    assert "deleted 1 rows of evals" in repaired.stderr
    assert [e.action for e in pushed.log()][-1] == "repair"


def test_temp_files_old_and_new(pushed: Registry) -> None:
    staging = pushed.blobs.root / "sha256" / "staging"
    staging.mkdir(parents=True, exist_ok=True)
    fresh = staging / ".tmp-fresh"
    fresh.write_bytes(b"x")
    assert findings(pushed) == [("staging", "info", "")]
    assert doctor(pushed).exit_code == 0  # a write in progress needs no action
    stale = pushed.home.tmp_dir / "push-crashed"
    stale.mkdir(parents=True)
    old = time.time() - LEASE_EXPIRY.total_seconds() - 60
    os.utime(stale, (old, old))
    assert ("staging", "warning", "adapters gc") in findings(pushed)


def test_expired_leases_suggest_gc(pushed: Registry) -> None:
    take_lease(pushed.catalog.engine, "dead", "0" * 64, now=utcnow() - LEASE_EXPIRY - timedelta(1))
    assert findings(pushed) == [("leases", "warning", "adapters gc")]
    take_lease(pushed.catalog.engine, "alive", "1" * 64)
    pushed.gc()
    assert findings(pushed) == [("leases", "info", "")]


def test_missing_staging_dir_names_init(pushed: Registry) -> None:
    pushed.home.tmp_dir.rmdir()
    result = doctor(pushed)
    assert result.exit_code == 1
    assert f"fix: adapters init {pushed.home.root}" in result.stdout


def test_unreachable_database_hides_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry.store.home import init_home

    home = init_home(tmp_path / "h").root
    monkeypatch.setenv(
        "ADAPTERS_DATABASE_URL", "postgresql+psycopg://team:s3cret@127.0.0.1:9/catalog"
    )
    result = CliRunner().invoke(main, ["--registry", str(home), "doctor"])
    assert result.exit_code == 1
    assert "[database]" in result.stdout and "s3cret" not in result.output
    assert "team:***@127.0.0.1:9/catalog" in result.stdout
    assert "fix: check ADAPTERS_DATABASE_URL" in result.stdout


def test_help_has_an_example() -> None:
    for command in ("doctor", "migrate"):
        shown = CliRunner().invoke(main, [command, "--help"])
        assert shown.exit_code == 0 and "Example:" in shown.stdout


@pytest.mark.parametrize("command", [["doctor"], ["migrate"], ["migrate", "--dry-run"]])
@pytest.mark.parametrize("how", ["env", "option"])
def test_doctor_and_migrate_refuse_a_server_url(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: list[str], how: str
) -> None:
    # With ADAPTERS_URL set they would otherwise check (or upgrade!) the default home.
    home = tmp_path / "default"
    Registry.open(home, create=True).close()
    monkeypatch.setenv("ADAPTERS_HOME", str(home))
    before = sorted((p.name, p.stat().st_mtime_ns) for p in home.iterdir())
    url = "http://127.0.0.1:9"
    if how == "env":
        monkeypatch.setenv("ADAPTERS_URL", url)
        args = command
    else:
        args = ["--registry", url, *command]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "not through a server" in lines[0] and command[0] in lines[0]
    assert (
        sorted((p.name, p.stat().st_mtime_ns) for p in (tmp_path / "default").iterdir()) == before
    )
