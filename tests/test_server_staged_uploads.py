"""A staged upload (``uploads/SHA256``) damaged on the server's disk after it arrived and
before the push that uses it: the push re-hashes it, refuses it, removes it and writes
nothing; the client sends it again and the version points only at bytes that match."""

from __future__ import annotations

import os
from pathlib import Path

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry, stage_uploads

from registry import Registry
from registry.admin.doctor import diagnose
from registry.remote import upload as remote_upload
from registry.store.blobs import BlobStore

API = "/api/v1"


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
        files = stage_uploads(http, directory)
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
        again = stage_uploads(http, directory)
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
        files = stage_uploads(http, directory)  # an earlier, interrupted push left them staged
    _damage(served, files["adapter_model.safetensors"])
    with Registry.open(served.url, token=served.tokens["writer"]) as remote:
        result = remote.push(directory, name="resent")
        assert remote.verify(result.version.ref).ok
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert local.verify("resent@1").ok


def test_an_upload_is_a_blob_as_it_arrives_and_the_push_keeps_it(
    served: ServedRegistry, tmp_path: Path
) -> None:
    directory = write_adapter(tmp_path / "early", seed=63)
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    with httpx2.Client(base_url=served.url, headers=auth, timeout=60) as http:
        files = stage_uploads(http, directory)
        weights = files["adapter_model.safetensors"]
        with Registry.open(served.home, database_url=served.database_url) as local:
            if isinstance(local.blobs, BlobStore):
                staged = local.store.tmp_dir / "uploads" / weights
                # Linked (and its directory fsynced) by the PUT, before any push names it.
                assert local.blobs.path(weights).samefile(staged)
                # Waiting for its push, it is not reported as left over.
                report = diagnose(local.home, local.catalog.url)
                assert not [f for f in report.findings if "belong to no version" in f.what]
            else:  # an object store receives a staged upload at the push, not before
                assert not local.blobs.exists(weights)
        pushed = http.post(f"{API}/push", json={"files": files, "name": "early"})
    assert pushed.status_code == 201, pushed.text
    # The push counts the blob its upload became as written by it.
    assert pushed.json()["blobs_written"] >= 1
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert local.verify("early@1").ok


def test_gc_between_the_upload_and_the_push_loses_nothing(
    served: ServedRegistry, tmp_path: Path
) -> None:
    directory = write_adapter(tmp_path / "collected", seed=64)
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    with httpx2.Client(base_url=served.url, headers=auth, timeout=60) as http:
        files = stage_uploads(http, directory)
        weights = files["adapter_model.safetensors"]
        with Registry.open(served.home, database_url=served.database_url) as local:
            collected = local.gc()
            if isinstance(local.blobs, BlobStore):
                # Unreferenced, the upload's blob is gc's to delete; the staged file stays.
                assert weights in {blob.sha256 for blob in collected.blobs}
            else:  # an object store has nothing of it before the push
                assert weights not in {blob.sha256 for blob in collected.blobs}
            assert not local.blobs.exists(weights)
        pushed = http.post(f"{API}/push", json={"files": files, "name": "collected"})
    assert pushed.status_code == 201, pushed.text
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert local.blobs.exists(weights)
        assert local.verify("collected@1").ok
