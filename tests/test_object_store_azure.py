"""Azure Blob Storage (``az://``) against a real Azurite on 127.0.0.1: what differs from
S3. Errors name Azure's variables, a missing container or a bad container name is one
line that says what to fix, the account key never leaks, and the server killed
mid-upload leaves no version and no visible blob.

The behaviour shared with S3 (push, verify, export, load, gc, doctor, the cache, throttling,
concurrent pushes, multipart) runs on Azure through the backend fixtures in conftest."""

from __future__ import annotations

import base64
import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import use_azure
from support.azurite import ACCOUNT_KEY, CONTAINER, AzuriteServer, azurite_binary
from support.handmade import write_lora
from support.lifecycle import one_line_error, run
from support.processes import KillAfter

from registry import Registry
from registry.errors import ArgumentError, BlobStoreError
from registry.store import object_blobs
from registry.store.blob_cache import BlobCache
from registry.store.hashing import sha256_file
from registry.store.object_blobs import ObjectBlobStore, parse_object_url

WRONG_KEY = base64.b64encode(b"not-the-azurite-account-key").decode()


def test_wrong_key_names_the_azure_variables(
    azurite_server: AzuriteServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = use_azure(azurite_server, monkeypatch)
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", WRONG_KEY)
    store = ObjectBlobStore(url, BlobCache(tmp_path / "cache"))
    with pytest.raises(BlobStoreError, match="refused the credentials") as caught:
        store.put_bytes(b"data")
    message = str(caught.value)
    assert "\n" not in message and "AZURE_STORAGE_ACCOUNT_KEY" in message
    assert "AWS_" not in message and WRONG_KEY not in message


def test_missing_container_is_one_line_on_push_and_gc(
    azurite_server: AzuriteServer,
    monkeypatch: pytest.MonkeyPatch,
    hermetic_env: Path,
    tmp_path: Path,
) -> None:
    use_azure(azurite_server, monkeypatch)
    Registry.open(hermetic_env, create=True).close()
    monkeypatch.setenv("ADAPTERS_BLOB_URL", "az://no-such-container-15/p")
    for args in (["push", str(write_lora(tmp_path / "a", 3)), "--name", "x"], ["gc"]):
        shown = run(*args)
        assert shown.exit_code == 1 and one_line_error(shown), shown.output
        assert "container 'no-such-container-15' does not exist" in shown.stderr
    assert run("list", "--json").stdout.strip() in ("[]", "")


@pytest.mark.parametrize(
    "url", ["az://c1/p", "az://Upper/p", "az://two--hyphens/p", "az://-start/p", "az://a_b/p"]
)
def test_bad_container_names_are_refused_before_any_request(url: str) -> None:
    with pytest.raises(ArgumentError, match="container name"):
        parse_object_url(url)


def test_good_names_pass() -> None:
    assert parse_object_url("az://adapters-test/a/b") == ("az", "adapters-test", "a/b")
    assert parse_object_url("s3://b/p") == ("s3", "b", "p")  # S3's legacy names vary
    assert parse_object_url("gs://my_bucket/p") == ("gs", "my_bucket", "p")
    with pytest.raises(ArgumentError, match="not a valid bucket name for gs://"):
        parse_object_url("gs://UPPER/p")


def test_key_never_printed_or_stored(
    azurite_server: AzuriteServer,
    monkeypatch: pytest.MonkeyPatch,
    hermetic_env: Path,
    tmp_path: Path,
) -> None:
    use_azure(azurite_server, monkeypatch)
    reg = Registry.open(hermetic_env, create=True)
    reg.push(write_lora(tmp_path / "a", 1), name="x")
    outputs = [
        run(*args).output for args in (["doctor", "--write-check"], ["show", "x"], ["verify", "x"])
    ]
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", WRONG_KEY)
    refused = run("verify", "x")  # streams from the store, past the cache
    assert refused.exit_code == 1 and one_line_error(refused), refused.output
    outputs.append(refused.output)
    for text in outputs:
        assert ACCOUNT_KEY not in text and WRONG_KEY not in text
    catalog = Path(str(reg.catalog.engine.url.database)).read_bytes()
    assert ACCOUNT_KEY.encode() not in catalog
    assert ACCOUNT_KEY.encode() not in (hermetic_env / "registry.json").read_bytes()
    reg.close()


@pytest.fixture
def own_azurite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path
) -> Iterator[AzuriteServer]:
    """An Azurite of this test's own (it gets killed), with the registry's blobs on it."""
    if azurite_binary() is None:
        pytest.skip("azurite-blob missing")  # the session fixture fails it under CI
    server = AzuriteServer(tmp_path / "azurite").start()
    try:
        use_azure(server, monkeypatch)
        monkeypatch.setenv("ADAPTERS_BLOB_RETRY_SECONDS", "2")
        monkeypatch.setenv("ADAPTERS_BLOB_URL", f"az://{CONTAINER}/faults")
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "azurite", ignore_errors=True)


def test_server_killed_mid_upload_then_push_again(
    own_azurite: AzuriteServer, monkeypatch: pytest.MonkeyPatch, hermetic_env: Path, tmp_path: Path
) -> None:
    monkeypatch.setattr(object_blobs, "SINGLE_PUT_LIMIT", 1 << 20)
    monkeypatch.setattr(object_blobs, "PART_SIZE", 5 << 20)
    monkeypatch.setattr(object_blobs, "PART_CONCURRENCY", 2)
    reg = Registry.open(hermetic_env, create=True)
    reg.push(write_lora(tmp_path / "small", 4), name="small")
    source = write_lora(tmp_path / "big", 1, r=32, hidden=16384)
    weights = sha256_file(source / "adapter_model.safetensors")
    with pytest.raises(BlobStoreError) as caught:
        reg.push(source, name="big", progress=KillAfter(own_azurite, 8 << 20))
    assert "\n" not in str(caught.value) and "retry" in str(caught.value)
    own_azurite.start()
    assert [v.name for v in reg.list()] == ["small"]
    assert not reg.blobs.exists(weights)  # the block list was never committed
    pushed = reg.push(source, name="big")
    assert reg.blobs.exists(weights) and reg.verify(pushed.version.ref).ok
    reg.close()


def test_a_server_on_azure_takes_the_bytes_itself(
    azurite_server: AzuriteServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # A plain PUT to an Azure pre-signed URL is refused (Put Blob needs x-ms-blob-type),
    # so the server offers no direct upload and the push streams through it.
    import httpx2
    from support.server import served_registry

    from registry.remote.wire import API

    use_azure(azurite_server, monkeypatch)
    source = write_lora(tmp_path / "a", 1)
    monkeypatch.setenv("ADAPTERS_CACHE_DIR", str(tmp_path / "server-cache"))
    with served_registry(tmp_path / "home", f"sqlite:///{tmp_path / 'c.db'}") as served:
        monkeypatch.setenv("ADAPTERS_CACHE_DIR", str(tmp_path / "client-cache"))
        monkeypatch.delenv("ADAPTERS_BLOB_URL")
        headers = {"Authorization": f"Bearer {served.tokens['writer']}"}
        offer = httpx2.post(
            f"{served.url}{API}/uploads/presign", json={"files": ["0" * 64]}, headers=headers
        ).json()
        assert offer == {"direct": False, "uploads": {}}
        client = Registry.open(served.url, token=served.tokens["writer"])
        pushed = client.push(source, name="through")
        assert client.verify(pushed.version.ref).ok
        out = client.export("through", tmp_path / "out").directory
        for entry in pushed.version.files:
            assert hashlib.sha256((out / entry.path).read_bytes()).hexdigest() == entry.sha256
