"""Crash safety on object storage: push, gc and export killed with SIGKILL at named
points (``registry/faults.py``) while the blobs live on a real S3 server or on Azurite
(every point on S3; on Azure a core set, the rest marked ``slow``).

After the kill, no version points at a missing or partial blob, every listed blob
hashes to its name, the cache holds no partial entry, and the same command run
again completes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import use_object_store
from support.handmade import write_lora

from registry import Registry
from registry.admin.doctor import diagnose
from registry.cli import main
from registry.faults import ENV_VAR
from registry.store.catalog.listing import ListFilter
from registry.store.object_blobs import ObjectBlobStore

REPO_ROOT = Path(__file__).resolve().parent.parent

CASES = [
    ("push", "push.leased#2"),
    ("push", "object.uploaded#1"),
    ("push", "object.uploaded#2"),
    ("push", "push.blob-committed#2"),
    ("push", "push.before-commit"),
    ("push", "catalog.insert-version"),
    ("gc", "gc.deleted#1"),
    ("gc", "gc.before-commit"),
    ("export", "object.reading#1"),
    ("export", "cache.filling#1"),
]


def _cli(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--registry", str(home), *args], catch_exceptions=False)


def assert_consistent(home: Path) -> None:
    with Registry.open(home) as reg:
        blobs = reg.blobs
        assert isinstance(blobs, ObjectBlobStore)
        for version in reg.catalog.list_versions(ListFilter()):
            for entry in version.files:
                assert blobs.check(entry.sha256, entry.size) is None, (version.ref, entry.path)
            assert _cli(home, "verify", version.ref).exit_code == 0
        for sha256 in blobs.iter_digests():
            assert blobs.check(sha256) is None, sha256
        cached = blobs.cache.root / "sha256"
        for path in cached.rglob("*") if cached.is_dir() else ():
            if path.is_file():
                assert blobs.check_local(path.parent.name + path.name) is None
        report = diagnose(reg.home, reg.home.database_url(), deep=True)
    for finding in report.findings:
        assert finding.severity != "error", finding
        if finding.severity == "warning":
            assert finding.fix == "adapters gc", finding


AZURE_CORE = {"object.uploaded#1", "push.before-commit", "gc.deleted#1", "object.reading#1"}
RUNS = [
    pytest.param(
        backend,
        command,
        point,
        id=f"{backend}-{command}:{point}",
        marks=[pytest.mark.slow] if backend == "azure" and point not in AZURE_CORE else [],
    )
    for backend in ("s3", "azure")
    for command, point in CASES
]


@pytest.mark.parametrize(("backend", "command", "point"), RUNS)
def test_kill_then_rerun_on_object_store(
    backend: str,
    command: str,
    point: str,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    use_object_store(request, backend, monkeypatch)
    monkeypatch.delenv("ADAPTERS_DATABASE_URL", raising=False)
    home = tmp_path / "registry"
    with Registry.open(home, create=True) as reg:
        reg.push(write_lora(tmp_path / "a", 1), name="a")
        reg.push(write_lora(tmp_path / "doomed", 3), name="doomed")
        reg.remove("doomed@1", force=True)
        reg.blobs.put_bytes(b"left by an interrupted push\n")
    fresh = write_lora(tmp_path / "fresh", 4, r=8)
    out = tmp_path / "out"
    args = {
        "push": ["push", str(fresh), "--name", "fresh"],
        "gc": ["gc"],
        "export": ["export", "a", str(out), "--overwrite"],
    }[command]
    killed = subprocess.run(
        [sys.executable, "-m", "registry.cli", "--registry", str(home), *args],
        env={**os.environ, ENV_VAR: point},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr[-2000:])
    assert_consistent(home)
    rerun = _cli(home, *args)
    assert rerun.exit_code == 0, rerun.output
    assert_consistent(home)
    if command == "gc":
        with Registry.open(home) as reg:
            assert set(reg.blobs.iter_digests()) == reg.catalog.referenced_blobs()
