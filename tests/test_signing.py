"""Signed adapters: keys, `adapters sign`, signature checks in verify, and policy gates.

A signature covers (name, version, digest) and the digest every file, so any change to a
stored file, to the manifest, or to the signature row itself makes the check fail.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import text
from support.handmade import tiny_model, write_adapter

from registry import Registry
from registry.cli import main
from registry.errors import GateError, IntegrityError, SignatureError
from registry.security.keys import Keyring
from registry.security.signing import STATEMENT_FORMAT, statement
from registry.store.results import AdapterVersion


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def checks(registry: Registry, ref: str) -> dict[str, tuple[str, str]]:
    return {c.name: (c.status, c.detail) for c in registry.verify(ref).checks}


@pytest.fixture
def registry(sqlite_registry: Registry) -> Registry:
    # Signatures are backend-neutral; the tests marked below run on every backend.
    return sqlite_registry


@pytest.fixture
def any_backend(
    database_url: str, hermetic_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Registry]:
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", database_url)
    reg = Registry.open(hermetic_env, create=True)
    try:
        yield reg
    finally:
        reg.close()


def push_and_sign(registry: Registry, tmp_path: Path) -> AdapterVersion:
    directory = write_adapter(tmp_path / "adapter", "lora", card=True)
    pushed = registry.push(directory, name="signed").version
    assert run("key", "generate", "release").exit_code == 0
    result = run("sign", pushed.ref, "--key", "release")
    assert result.exit_code == 0, result.output
    return pushed


@pytest.fixture
def version(registry: Registry, tmp_path: Path) -> AdapterVersion:
    directory = write_adapter(tmp_path / "adapter", "lora", card=True)
    return registry.push(directory, name="signed").version


@pytest.fixture
def signed(registry: Registry, version: AdapterVersion) -> AdapterVersion:
    assert run("key", "generate", "release").exit_code == 0
    result = run("sign", version.ref, "--key", "release")
    assert result.exit_code == 0, result.output
    return version


def _foreign_key(tmp_path: Path, name: str = "alice") -> tuple[Path, Path]:
    """A key pair made elsewhere: (private PEM file, public PEM file)."""
    key = Ed25519PrivateKey.generate()
    private = tmp_path / f"{name}.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    private.chmod(0o600)
    public = tmp_path / f"{name}.pub"
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


# -- keys ----------------------------------------------------------------------------------


def test_generate_writes_a_private_key_only_its_owner_can_read(registry: Registry) -> None:
    result = run("key", "generate", "release", "--json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    ring = Keyring(registry.home.root, registry.catalog)
    private = ring.private_path("release")
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert Path(info["public_key"]).read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert len(info["key_id"]) == 64 and info["private_key_here"] is True
    listed = json.loads(run("key", "list", "--json").stdout)
    assert [(k["name"], k["key_id"]) for k in listed] == [("release", info["key_id"])]


def test_generate_refuses_to_overwrite(registry: Registry) -> None:
    assert run("key", "generate", "release").exit_code == 0
    before = Keyring(registry.home.root, registry.catalog).private_path("release").read_bytes()
    again = run("key", "generate", "release")
    assert again.exit_code == 1 and "already exists" in again.stderr
    ring = Keyring(registry.home.root, registry.catalog)
    assert ring.private_path("release").read_bytes() == before


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "/etc/x", "Upper", "", "x" * 65])
def test_key_names_are_not_paths(name: str, registry: Registry, tmp_path: Path) -> None:
    result = run("key", "generate", name)
    assert result.exit_code == 1 and result.stderr.startswith("error: invalid key name")
    assert not (registry.home.root / "keys").exists()
    assert not (tmp_path / "evil.pem").exists()


def test_trust_accepts_pem_and_openssh_and_refuses_other_keys(
    registry: Registry, tmp_path: Path
) -> None:
    _, public = _foreign_key(tmp_path)
    assert run("key", "trust", "alice", str(public)).exit_code == 0
    assert run("key", "trust", "alice", str(public)).exit_code == 0  # same key: no-op
    clash = run("key", "trust", "alice2", str(public))
    assert clash.exit_code == 1 and "already trusted as 'alice'" in clash.stderr

    ssh = (
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    )
    (tmp_path / "bob.pub").write_bytes(ssh + b" bob@laptop\n")
    assert run("key", "trust", "bob", str(tmp_path / "bob.pub")).exit_code == 0

    (tmp_path / "junk.pub").write_text("-----BEGIN PUBLIC KEY-----\nnot base64\n")
    junk = run("key", "trust", "junk", str(tmp_path / "junk.pub"))
    assert junk.exit_code == 1 and "not a PEM or OpenSSH public key" in junk.stderr
    names = [k["name"] for k in json.loads(run("key", "list", "--json").stdout)]
    assert names == ["alice", "bob"]


# -- signing and verifying ------------------------------------------------------------------


def test_sign_then_verify_reports_the_signer(any_backend: Registry, tmp_path: Path) -> None:
    registry = any_backend
    signed = push_and_sign(registry, tmp_path)
    status, detail = checks(registry, signed.ref)["signature release"]
    assert status == "pass" and "signed by trusted key release" in detail
    result = run("verify", signed.ref, "--json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert {"name": "signature release", "status": "pass"}.items() <= next(
        c for c in report["checks"] if c["name"] == "signature release"
    ).items()
    events = [e for e in registry.log(signed.ref) if e.action == "sign"]
    assert len(events) == 1 and events[0].details["signer"] == "release"


def test_unsigned_version_says_so(registry: Registry, version: AdapterVersion) -> None:
    status, detail = checks(registry, version.ref)["signature"]
    assert status == "skip" and "not signed" in detail
    assert registry.verify(version.ref).ok


def test_signing_again_is_a_no_op(registry: Registry, signed: AdapterVersion) -> None:
    again = run("sign", signed.ref, "--key", "release", "--json")
    assert again.exit_code == 0 and json.loads(again.stdout)["created"] is False
    assert len([e for e in registry.log(signed.ref) if e.action == "sign"]) == 1


def test_the_statement_is_canonical_json(signed: AdapterVersion, registry: Registry) -> None:
    result = json.loads(run("sign", signed.ref, "--key", "release", "--json").stdout)
    assert json.loads(result["statement"]) == {
        "digest": signed.digest,
        "format": STATEMENT_FORMAT,
        "name": "signed",
        "version": signed.version,
    }
    assert result["statement"].encode() == statement("signed", signed.version, signed.digest)


@pytest.mark.parametrize("path", ["README.md", "adapter_config.json", "adapter_model.safetensors"])
def test_tampering_with_any_file_breaks_the_signature(
    path: str, registry: Registry, signed: AdapterVersion
) -> None:
    entry = next(f for f in signed.files if f.path == path)
    blob = registry.blobs.path(entry.sha256)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0x20
    blob.write_bytes(bytes(data))
    found = checks(registry, signed.ref)
    assert found[f"file {path}"][0] == "fail"
    assert found["signature release"][0] == "fail"
    assert "changed since" in found["signature release"][1]
    assert run("verify", signed.ref).exit_code == 1


def _sql(registry: Registry, statement_text: str, **params: Any) -> None:
    with registry.catalog.engine.begin() as connection:
        connection.execute(text(statement_text), params)


def test_tampering_with_the_manifest_breaks_the_signature(
    registry: Registry, signed: AdapterVersion
) -> None:
    # Change the config in the manifest and even recompute the digest: the signature was
    # over the old digest, so it no longer signs this version.
    from dataclasses import replace

    manifest = replace(signed.manifest, config={**signed.manifest.config, "r": 8})
    _sql(
        registry,
        "UPDATE adapter_versions SET manifest = :m, digest = :d WHERE name = 'signed'",
        m=manifest.canonical_bytes().decode(),
        d=manifest.digest,
    )
    found = checks(registry, f"signed@{signed.version}")
    assert found["digest"][0] == "pass"  # consistent: only the signature can tell
    assert found["signature release"][0] == "fail"
    assert "does not sign" in found["signature release"][1]


def test_tampering_with_the_signature_row_breaks_it(any_backend: Registry, tmp_path: Path) -> None:
    registry = any_backend
    signed = push_and_sign(registry, tmp_path)
    _sql(registry, "UPDATE signatures SET signature = :s", s="A" * 86 + "==")
    assert checks(registry, signed.ref)["signature release"][0] == "fail"


def test_a_key_swapped_into_the_row_is_not_trusted(
    registry: Registry, signed: AdapterVersion, tmp_path: Path
) -> None:
    # Someone with database access signs with their own key and records it under the
    # trusted key's name: the key id decides, not the name.
    _sql(registry, "DELETE FROM signatures")
    private, _ = _foreign_key(tmp_path, "mallory")
    result = run("sign", signed.ref, "--key", str(private))
    assert result.exit_code == 0, result.output
    _sql(registry, "UPDATE signatures SET signer = 'release'")
    status, detail = checks(registry, signed.ref)["signature release"]
    assert status == "warn" and "not trusted here" in detail


def test_untrusted_key_warns_until_trusted(
    registry: Registry, version: AdapterVersion, tmp_path: Path
) -> None:
    private, public = _foreign_key(tmp_path)
    assert run("sign", version.ref, "--key", str(private)).exit_code == 0
    status, detail = checks(registry, version.ref)["signature alice"]
    assert status == "warn" and "adapters key trust" in detail
    assert registry.verify(version.ref).ok  # a warning, not a failure
    assert run("key", "trust", "alice", str(public)).exit_code == 0
    assert checks(registry, version.ref)["signature alice"][0] == "pass"


def test_damaged_version_is_not_signed(registry: Registry, version: AdapterVersion) -> None:
    assert run("key", "generate", "release").exit_code == 0
    weights = next(f for f in version.files if f.role == "weights")
    blob = registry.blobs.path(weights.sha256)
    os.chmod(blob, 0o644)
    blob.write_bytes(blob.read_bytes()[:-4])
    result = run("sign", version.ref, "--key", "release")
    assert result.exit_code == 1 and "fails verification" in result.stderr
    assert "adapter_model.safetensors" in result.stderr
    assert [e.action for e in registry.log(version.ref)] == ["push"]


def test_private_key_readable_by_others_is_refused(
    registry: Registry, version: AdapterVersion, tmp_path: Path
) -> None:
    private, _ = _foreign_key(tmp_path)
    private.chmod(0o644)
    result = run("sign", version.ref, "--key", str(private))
    assert result.exit_code == 1 and "chmod 600" in result.stderr
    body = private.read_text().splitlines()[1]
    assert body not in result.output


def test_unusable_key_files(registry: Registry, version: AdapterVersion, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n-----END PRIVATE KEY-----\n")
    garbage.chmod(0o600)
    result = run("sign", version.ref, "--key", str(garbage))
    assert result.exit_code == 1 and "is not a PEM private key" in result.stderr
    assert "c2VjcmV0LWJ5dGVz" not in result.output
    missing = run("sign", version.ref, "--key", "nobody")
    assert missing.exit_code == 1 and "adapters key generate" in missing.stderr


def test_removing_a_signed_version_removes_its_signatures(
    any_backend: Registry, tmp_path: Path
) -> None:
    registry = any_backend
    signed = push_and_sign(registry, tmp_path)
    registry.remove(signed.ref, reason="test")
    with registry.catalog.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM signatures")).scalar_one() == 0


# -- policy ---------------------------------------------------------------------------------


def _policy(registry: Registry, **document: Any) -> None:
    document.setdefault("version", 1)
    document.setdefault("rules", [])
    (registry.home.root / "policy.json").write_text(json.dumps(document))


def test_alias_gate_requires_a_trusted_signature(
    registry: Registry, version: AdapterVersion, tmp_path: Path
) -> None:
    _policy(registry, rules=[{"alias": "prod", "require_signature": True}])
    with pytest.raises(GateError, match="no valid signature by a trusted key"):
        registry.set_alias(version.ref, "prod")
    private, _ = _foreign_key(tmp_path)
    registry.sign(version.ref, str(private))  # valid, but not trusted here
    with pytest.raises(GateError, match="signature"):
        registry.set_alias(version.ref, "prod")
    assert run("key", "generate", "release").exit_code == 0
    registry.sign(version.ref, "release")
    change = registry.set_alias(version.ref, "prod")
    assert any(c.name == "signature" and c.status == "pass" for c in change.gates)
    assert registry.check_alias(version.ref, "prod").ok


def test_push_with_a_gated_alias_is_refused(registry: Registry, tmp_path: Path) -> None:
    _policy(registry, rules=[{"alias": "prod", "require_signature": True}])
    directory = write_adapter(tmp_path / "fresh", "lora")
    result = run("push", str(directory), "--alias", "prod")
    assert result.exit_code == 1 and "no signature yet" in result.stderr
    assert registry.catalog.count_versions() == 0


def test_require_signature_on_the_command_line(registry: Registry, version: AdapterVersion) -> None:
    with pytest.raises(GateError, match="signature"):
        registry.set_alias(version.ref, "staging", requires=["signature"])


def test_load_policy_refuses_unsigned_versions(registry: Registry, version: AdapterVersion) -> None:
    _policy(registry, load={"require_signature": True})
    model = tiny_model()
    with pytest.raises(SignatureError, match="requires one to load it"):
        registry.load(version.ref, model, strict=False)
    assert run("key", "generate", "release").exit_code == 0
    registry.sign(version.ref, "release")
    with pytest.warns(UserWarning):  # no base recorded: accepted explicitly, with a warning
        handle = registry.load(version.ref, model, allow_unverified_base=True)
    with handle:
        assert handle.mode == "native"


def test_load_policy_refuses_a_tampered_signed_version(
    registry: Registry, signed: AdapterVersion
) -> None:
    _policy(registry, load={"require_signature": True})
    _sql(registry, "UPDATE signatures SET signature = :s", s="A" * 86 + "==")
    with pytest.raises(SignatureError):
        registry.load(signed.ref, tiny_model())
    card = next(f for f in signed.files if f.path == "README.md")
    os.chmod(registry.blobs.path(card.sha256), 0o644)
    registry.blobs.path(card.sha256).write_text("# changed\n")
    with pytest.raises(IntegrityError, match=r"README\.md"):
        registry.load(signed.ref, tiny_model())


def test_policy_schema_checks_the_new_keys(registry: Registry, version: AdapterVersion) -> None:
    _policy(registry, load={"require_signature": "yes"})
    result = run("alias", version.ref, "prod")
    assert result.exit_code == 1 and "require_signature" in result.stderr
