"""Secrets stay secret: no token, key material or database password in any output, log,
error, catalog row or file of the registry home (the private key file itself excepted).

The Hub commands have their own token test (tests/test_hub_cli.py); this one covers every
command that touches the catalog, the signing keys, and database URLs in errors.
"""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlmodel import SQLModel
from support.handmade import write_adapter

from registry import Registry
from registry.cli import main
from registry.errors import CatalogError
from registry.security.keys import Keyring, load_private_key
from registry.store.catalog.engine import redacted_url

TOKEN = "hf_SECRET_token_for_leak_tests_0123456789"
PASSWORD = "Pw_SECRET_for_leak_tests_42"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def key_material(private_pem: Path) -> list[bytes]:
    """Every form the private key could leak in: PEM lines, raw bytes, hex, base64."""
    lines = private_pem.read_bytes().splitlines()
    body = [line for line in lines if line and not line.startswith(b"-----")]
    raw = load_private_key(private_pem).private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return [*body, b"".join(body), raw, raw.hex().encode(), base64.b64encode(raw)]


def catalog_dump(registry: Registry) -> str:
    """Every row of every catalog table, as text."""
    rows = []
    with registry.catalog.engine.connect() as connection:
        for table in SQLModel.metadata.sorted_tables:
            for row in connection.execute(select(table)):
                rows.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(rows)


def test_no_token_or_key_material_anywhere(
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("HUGGING_FACE_HUB_TOKEN", TOKEN)
    directory = write_adapter(tmp_path / "adapter", "lora", card=True)
    foreign = tmp_path / "outside.pem"

    steps: list[tuple[tuple[str, ...], int]] = [
        (("key", "generate", "release"), 0),
        (("key", "generate", "release", "--json"), 1),
        (("push", str(directory), "--name", "secret-test", "--json"), 0),
        (("push", str(directory), "--name", "secret-test", "--tag", "team=ml"), 0),
        (("sign", "secret-test@1", "--key", "release"), 0),
        (("sign", "secret-test@1", "--key", "release", "--json"), 0),
        (("sign", "secret-test@1", "--key", str(foreign)), 1),
        (("sign", "secret-test@1", "--key", "absent"), 1),
        (("verify", "secret-test@1"), 0),
        (("verify", "secret-test@1", "--json"), 0),
        (("show", "secret-test@1"), 0),
        (("show", "secret-test@1", "--json"), 0),
        (("list",), 0),
        (("list", "--json"), 0),
        (("log",), 0),
        (("log", "--json"), 0),
        (("key", "list"), 0),
        (("key", "list", "--json"), 0),
        (("eval", "secret-test@1", "accuracy=0.9"), 0),
        (("alias", "secret-test@1", "prod"), 0),
        (("export", "secret-test@prod", str(tmp_path / "exported"), "--json"), 0),
        (("verify", "missing@1"), 1),
    ]
    results = []
    for index, (args, expected) in enumerate(steps):
        if index == 1:
            # A copy of the key outside the home, readable by everyone: refused, not quoted.
            ring = Keyring(registry.home.root, registry.catalog)
            foreign.write_bytes(ring.private_path("release").read_bytes())
            foreign.chmod(0o644)
        result = run(*args)
        assert result.exit_code == expected, (args, result.output)
        results.append(result)

    private = Keyring(registry.home.root, registry.catalog).private_path("release")
    secrets = [TOKEN.encode(), *key_material(private)]
    for result in results:
        output = (result.stdout + result.stderr).encode()
        for secret in secrets:
            assert secret not in output, f"secret in the output of {result}"
    logged = caplog.text.encode()
    assert all(secret not in logged for secret in secrets)

    dumped = catalog_dump(registry).encode()
    assert b"secret-test" in dumped and b"sign" in dumped  # the dump does see the catalog
    for secret in secrets:
        assert secret not in dumped

    for path in registry.home.root.rglob("*"):
        if path.is_file() and path != private:
            data = path.read_bytes()
            for secret in secrets:
                assert secret not in data, f"secret found in {path}"
    # The key file itself is where the key lives; nothing else in the home has it.
    assert key_material(private)[0] in private.read_bytes()


CLOSED = "127.0.0.1:1"  # nothing listens on port 1


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://bob:{PASSWORD}@{CLOSED}/catalog",
        f"postgresql+psycopg://bob@{CLOSED}/catalog?password={PASSWORD}",
        f"postgresql+nodriver://bob:{PASSWORD}@{CLOSED}/catalog",
        f"not a url {PASSWORD}",
    ],
    ids=["password", "password-parameter", "unknown-driver", "unparseable"],
)
def test_database_passwords_never_shown(
    url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", url)
    directory = write_adapter(tmp_path / "adapter", "lora")
    for args in (("list",), ("list", "--json"), ("push", str(directory))):
        result = run(*args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: ")
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert PASSWORD not in result.output
    with pytest.raises(CatalogError) as caught:
        Registry.open(database_url=url)
    assert PASSWORD not in str(caught.value)
    assert PASSWORD not in repr(caught.value)


def test_redacted_url_masks_every_credential() -> None:
    shown = redacted_url(f"postgresql://u:{PASSWORD}@h/db?sslpassword={PASSWORD}&sslmode=require")
    assert PASSWORD not in shown
    assert "sslmode=require" in shown and "u:***@h/db" in shown


def test_keys_never_appear_in_key_listings(registry: Registry) -> None:
    made = json.loads(run("key", "generate", "ops", "--json").stdout)
    private = Keyring(registry.home.root, registry.catalog).private_path("ops")
    listed = run("key", "list", "--json").stdout.encode()
    assert all(secret not in listed for secret in key_material(private))
    assert made["key_id"].encode() in listed
