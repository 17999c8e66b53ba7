"""A staged upload (``uploads/SHA256``) damaged on the server's disk after it arrived and
before the push that uses it: the push re-hashes it, refuses it, removes it and writes
nothing; the client sends it again and the version points only at bytes that match."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.remote import upload as remote_upload

API = "/api/v1"


def _stage(http: httpx2.Client, directory: Path) -> dict[str, str]:
    files = {}
    for path in sorted(directory.iterdir()):
        data = path.read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        http.put(f"{API}/uploads/{sha}", content=data).raise_for_status()
        files[path.name] = sha
    return files


def _damage(served: ServedRegistry, sha: str) -> Path:
    """Flip one byte of the staged upload in place: same size, same name, other bytes."""
    with Registry.open(served.home, database_url=served.database_url) as local:
        staged = local.store.tmp_dir / "uploads" / sha
    os.chmod(staged, 0o644)
    data = bytearray(staged.read_bytes())
    data[len(data) // 2] ^= 0xFF
    staged.write_bytes(bytes(data))
    return staged


def test_a_damaged_staged_upload_is_refused_and_nothing_is_written(
    served: ServedRegistry, tmp_path: Path
) -> None:
    directory = write_adapter(tmp_path / "damaged", seed=61)
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    with httpx2.Client(base_url=served.url, headers=auth, timeout=60) as http:
        files = _stage(http, directory)
        weights = files["adapter_model.safetensors"]
        staged = _damage(served, weights)
        refused = http.post(f"{API}/push", json={"files": files, "name": "damaged"})
        assert refused.status_code == 422, refused.text
        problem = refused.json()["error"]
        assert problem["code"] == "integrity_error" and "push again" in problem["message"]
        assert "\n" not in problem["message"]
        assert not staged.exists()  # removed, so that the next PUT stores it anew
        with Registry.open(served.home, database_url=served.database_url) as local:
            assert not local.list(name="damaged")
            assert not local.blobs.exists(weights)
        # Sent again, the push completes on the right bytes.
        again = _stage(http, directory)
        accepted = http.post(f"{API}/push", json={"files": again, "name": "damaged"})
    assert accepted.status_code == 201, accepted.text
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert local.verify("damaged@1").ok


def test_the_client_sends_a_damaged_staged_upload_again(
    served: ServedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Files by PUT and then POST /push, as a push above the one-request size sends them.
    monkeypatch.setattr(remote_upload, "BUNDLE_BYTES", 0)
    directory = write_adapter(tmp_path / "resent", seed=62)
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    with httpx2.Client(base_url=served.url, headers=auth, timeout=60) as http:
        files = _stage(http, directory)  # an earlier, interrupted push left them staged
    _damage(served, files["adapter_model.safetensors"])
    with Registry.open(served.url, token=served.tokens["writer"]) as remote:
        result = remote.push(directory, name="resent")
        assert remote.verify(result.version.ref).ok
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert local.verify("resent@1").ok
