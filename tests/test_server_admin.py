"""Trusted keys and the promotion policy, administered locally (``adapters key untrust``,
``adapters policy show|check|set``) and through a server by an admin token: validated
before anything is written, audited with the actor, and in force from the next gated
alias move."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.handmade import write_adapter
from support.lifecycle import one_line_error, run
from support.server import ServedRegistry
from test_signing import _foreign_key

from registry import Registry
from registry.errors import AccessError, GateError, SignatureError, ValidationError

GATED = {
    "version": 1,
    "rules": [{"alias": "prod", "evals": [{"metric": "accuracy", "min": 0.9}]}],
}


def test_a_policy_set_remotely_gates_the_next_move(
    served: ServedRegistry, tmp_path: Path
) -> None:
    admin = Registry.open(served.url, token=served.tokens["admin"])
    maintainer = Registry.open(served.url, token=served.tokens["maintainer"])
    pushed = maintainer.push(write_adapter(tmp_path / "a", seed=7), name="gated/lm").version
    maintainer.record_eval(pushed.ref, {"accuracy": 0.5})
    maintainer.set_alias(pushed.ref, "prod")  # no policy yet: the move is allowed
    assert admin.policy().document is None
    # An invalid policy is refused whole, with every problem, and nothing is written.
    bad = {"version": 1, "rules": [{"alias": "prod", "evals": [{"metric": "accuracy",
                                                                "min": 0.9, "max": 0.1}]}]}
    with pytest.raises(ValidationError, match="above max"):
        admin.set_policy(bad)
    assert not (served.home / "policy.json").exists()
    assert not admin.check_policy(bad).valid
    assert admin.check_policy(GATED).valid and admin.check_policy(GATED).rules == 1
    # A valid one is stored, audited with the admin token's name...
    change = admin.set_policy(GATED)
    assert change.actor == "admin" and change.previous_sha256 is None and change.rules == 1
    assert admin.policy().document == GATED and admin.policy().sha256 == change.sha256
    # ...and the very next move is gated by it.
    again = maintainer.push(write_adapter(tmp_path / "b", seed=8), name="gated/lm").version
    with pytest.raises(GateError, match="accuracy"):
        maintainer.set_alias(again.ref, "prod")
    events = [e for e in admin.log() if e.action == "policy-set"]
    assert [(e.actor, e.details["sha256"]) for e in events] == [("admin", change.sha256)]
    # Nothing but an admin token without a namespace reads or changes it.
    for token in ("reader", "writer", "maintainer", "team-admin"):
        other = Registry.open(served.url, token=served.tokens[token])
        for call in (other.policy, lambda o=other: o.set_policy(GATED), other.check_policy):
            with pytest.raises(AccessError):
                call()
        other.close()
    admin.set_policy({"version": 1, "rules": []})  # leave the module's server ungated
    admin.close()
    maintainer.close()


def test_keys_are_trusted_listed_and_untrusted_remotely(
    served: ServedRegistry, tmp_path: Path
) -> None:
    admin = Registry.open(served.url, token=served.tokens["admin"])
    private, public = _foreign_key(tmp_path, "carol")
    info = admin.trust_key("carol", public)
    assert info.name == "carol" and len(info.key_id) == 64
    expected = subprocess.run(["ssh-keygen", "-lf", str(_ssh_public(public, tmp_path))],
                              capture_output=True, text=True, check=False)  # fmt: skip
    if expected.returncode == 0:  # the fingerprint is the one ssh-keygen shows
        assert expected.stdout.split()[1] == info.fingerprint
    listed = {k.name: k for k in admin.trusted_keys()}
    assert listed["carol"].recorded and listed["carol"].fingerprint == info.fingerprint
    # The server checks the key as `adapters key trust` does; nothing is written otherwise.
    with pytest.raises(SignatureError, match="not a PEM or OpenSSH public key"):
        admin.trust_key("bad", b"-----BEGIN PUBLIC KEY-----\nnot a key\n")
    with pytest.raises(SignatureError):
        admin.trust_key("priv", private)  # a private key is not a public one
    assert "bad" not in {k.name for k in admin.trusted_keys()}
    # Signatures by an untrusted key stop counting; the audit log names the admin.
    admin.untrust_key("carol")
    assert "carol" not in {k.name for k in admin.trusted_keys()}
    events = [e for e in admin.log() if e.action in ("key-trust", "key-untrust")]
    assert [(e.action, e.actor) for e in events[-2:]] == [("key-trust", "admin"),
                                                          ("key-untrust", "admin")]  # fmt: skip
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert "carol" not in {k.name for k in local.trusted_keys() if k.recorded}
    for token in ("reader", "writer", "maintainer", "team-admin"):
        other = Registry.open(served.url, token=served.tokens[token])
        with pytest.raises(AccessError):
            other.trusted_keys()
        with pytest.raises(AccessError):
            other.trust_key("mallory", public)
        other.close()
    admin.close()


def _ssh_public(public: Path, tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public.read_bytes())
    out = tmp_path / "key.ssh.pub"
    out.write_bytes(key.public_bytes(serialization.Encoding.OpenSSH,
                                     serialization.PublicFormat.OpenSSH))  # fmt: skip
    return out


def test_policy_and_untrust_on_the_command_line(
    sqlite_registry: Registry, tmp_path: Path
) -> None:
    registry = sqlite_registry
    assert run("policy", "show", "--json").stdout.strip() == "null"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"version": 1, "rules": [{"alias": "prod"}]}))
    checked = run("policy", "check", str(bad), "--json")
    assert checked.exit_code == 1 and json.loads(checked.stdout)["valid"] is False
    refused = run("policy", "set", str(bad))
    assert refused.exit_code == 1 and one_line_error(refused)
    assert not (registry.home.root / "policy.json").exists()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GATED))
    assert run("policy", "check", str(good)).exit_code == 0
    done = run("policy", "set", str(good), "--json")
    assert done.exit_code == 0 and json.loads(done.stdout)["actor"] == "tester@ci"
    assert json.loads(run("policy", "show", "--json").stdout) == GATED
    assert run("policy", "check").exit_code == 0  # the stored one
    version = registry.push(write_adapter(tmp_path / "a", seed=3), name="cli/lm").version
    with pytest.raises(GateError):
        registry.set_alias(version.ref, "prod")
    # Keys: trust, then untrust; the second untrust names what to do.
    _private, public = _foreign_key(tmp_path, "dave")
    assert run("key", "trust", "dave", str(public)).exit_code == 0
    gone = run("key", "untrust", "dave", "--json")
    assert gone.exit_code == 0 and json.loads(gone.stdout)["trusted"] is False
    assert not (registry.home.root / "keys" / "trusted" / "dave.pub").exists()
    again = run("key", "untrust", "dave")
    assert again.exit_code == 1 and "adapters key list" in again.stderr
    # Trusting it again counts again (the latest record wins).
    assert run("key", "trust", "dave", str(public)).exit_code == 0
    assert {k.name for k in registry.trusted_keys() if k.recorded} == {"dave"}
