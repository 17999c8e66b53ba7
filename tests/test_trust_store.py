"""The trust store: keys count only when trusted through `adapters key trust` or
`adapters key generate` (recorded in the audit log), and key files or directories others
could change are refused with the chmod that fixes them, as ssh does."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.handmade import write_adapter
from support.lifecycle import one_line_error, run
from test_signing import _foreign_key

from registry import Registry
from registry.errors import GateError
from registry.store.results import AdapterVersion


@pytest.fixture
def version(sqlite_registry: Registry, tmp_path: Path) -> AdapterVersion:
    return sqlite_registry.push(write_adapter(tmp_path / "adapter", "lora"), name="signed").version


def _require_signature(registry: Registry) -> None:
    policy = {"version": 1, "rules": [{"alias": "prod", "require_signature": True}]}
    (registry.home.root / "policy.json").write_text(json.dumps(policy))


def _signature_check(registry: Registry, ref: str) -> tuple[str, str]:
    check = next(c for c in registry.verify(ref).checks if c.name.startswith("signature"))
    return check.status, check.detail


def test_a_key_file_dropped_into_the_folder_is_not_trusted(
    sqlite_registry: Registry, version: AdapterVersion, tmp_path: Path
) -> None:
    registry = sqlite_registry
    _require_signature(registry)
    private, public = _foreign_key(tmp_path, "mallory")
    registry.sign(version.ref, str(private))
    assert run("key", "generate", "release").exit_code == 0  # the trust store exists
    shutil.copy(public, registry.home.root / "keys" / "trusted" / "mallory.pub")
    assert _signature_check(registry, version.ref)[0] == "warn"
    with pytest.raises(GateError, match="no valid signature by a trusted key"):
        registry.set_alias(version.ref, "prod")
    listed = run("key", "list")
    assert listed.exit_code == 0
    assert "mallory" in listed.stdout and "NO" in listed.stdout
    assert "adapters key trust mallory" in listed.stderr
    as_json = {k["name"]: k["trusted"] for k in json.loads(run("key", "list", "--json").stdout)}
    assert as_json == {"mallory": False, "release": True}
    # Trusting it through the command records who did it, and then it counts.
    path = registry.home.root / "keys" / "trusted" / "mallory.pub"
    assert run("key", "trust", "mallory", str(path)).exit_code == 0
    events = [e for e in registry.log() if e.action == "key-trust"]
    assert [e.details["key"] for e in events] == ["release", "mallory"]
    assert all(e.actor == "tester@ci" for e in events)
    assert _signature_check(registry, version.ref)[0] == "pass"
    registry.set_alias(version.ref, "prod")


def test_a_trusted_file_replaced_by_another_key_is_not_trusted(
    sqlite_registry: Registry, version: AdapterVersion, tmp_path: Path
) -> None:
    registry = sqlite_registry
    (tmp_path / "a").mkdir()
    _, alice = _foreign_key(tmp_path / "a")
    assert run("key", "trust", "alice", str(alice)).exit_code == 0
    private, mallory = _foreign_key(tmp_path, "mallory")
    registry.sign(version.ref, str(private))
    shutil.copy(mallory, registry.home.root / "keys" / "trusted" / "alice.pub")
    assert _signature_check(registry, version.ref)[0] == "warn"


@pytest.mark.parametrize(
    ("target", "mode", "fix"),
    [
        ("keys/trusted", 0o777, "chmod go-w"),
        ("keys/trusted", 0o775, "chmod go-w"),
        ("keys", 0o777, "chmod go-w"),
        ("keys/trusted/release.pub", 0o666, "chmod go-w"),
        ("keys/private", 0o777, "chmod 700"),
        ("keys/private/release.pem", 0o644, "chmod 600"),
    ],
)
def test_unsafe_permissions_are_refused_with_the_fix(
    sqlite_registry: Registry, version: AdapterVersion, target: str, mode: int, fix: str
) -> None:
    assert run("key", "generate", "release").exit_code == 0
    sqlite_registry.sign(version.ref, "release")  # so verify reads the trust store
    path = sqlite_registry.home.root / target
    path.chmod(mode)
    try:
        command = (
            ("sign", version.ref, "--key", "release") if "private" in target else ("key", "list")
        )
        result = run(*command)
        assert result.exit_code == 1 and one_line_error(result), result.output
        assert f"{fix} {path}" in result.stderr
        if "private" not in target:
            verify = run("verify", version.ref)
            assert verify.exit_code == 1 and f"{fix} {path}" in verify.stderr
    finally:
        path.chmod(0o700 if path.is_dir() else 0o600)
