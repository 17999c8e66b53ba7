"""Registering a version from files already uploaded (``PUT /uploads`` then ``POST
/push``): the staged files, hashed and fsynced when they arrived, become blobs by a link
rather than a second copy and hash, and every check of a push still runs."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx2
import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry, stage_uploads

from registry import Registry
from registry.errors import IntegrityError
from registry.store.blobs import BlobStore
from registry.store.verified_files import staged_files, verified_files

API = "/api/v1"


def _upload_all(served: ServedRegistry, directory: Path, http: httpx2.Client) -> dict[str, str]:
    return stage_uploads(http, directory)


def test_uploaded_files_become_blobs_by_link(served: ServedRegistry, tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "linked", seed=31)
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    with httpx2.Client(base_url=served.url, headers=auth, timeout=60) as http:
        files = _upload_all(served, directory, http)
        response = http.post(f"{API}/push", json={"files": files, "name": "linked"})
    assert response.status_code == 201, response.text
    weights = files["adapter_model.safetensors"]
    with Registry.open(served.home, database_url=served.database_url) as local:
        blob = local.blobs.path(weights)
        staged = local.store.tmp_dir / "uploads" / weights
        if served.backend.endswith("+local"):  # on object storage the blob is not a file here
            assert os.stat(blob).st_ino == os.stat(staged).st_ino  # linked, not copied
        assert not os.stat(blob).st_mode & 0o222  # read-only like every blob
        assert local.verify("linked@1").ok
        assert local.get("linked@1").manifest.digest == response.json()["version"]["digest"]


def test_a_refused_push_of_uploads_stores_nothing(served: ServedRegistry, tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "refused", seed=32)
    (directory / "adapter_config.json").write_text('{"peft_type": "LORA", "r": "eight"}')
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    with httpx2.Client(base_url=served.url, headers=auth, timeout=60) as http:
        files = _upload_all(served, directory, http)
        response = http.post(f"{API}/push", json={"files": files, "name": "refused"})
    assert response.status_code == 422, response.text
    with Registry.open(served.home, database_url=served.database_url) as local:
        assert not local.list(name="refused")
        weights = files["adapter_model.safetensors"]
        staged = local.store.tmp_dir / "uploads" / weights
        # The push stored nothing: what the blob store holds is the upload itself, linked
        # in as it arrived, referenced by no version, so gc's to delete.
        if local.blobs.exists(weights):
            assert isinstance(local.blobs, BlobStore)
            assert local.blobs.path(weights).samefile(staged)
            assert weights in {blob.sha256 for blob in local.gc(dry_run=True).blobs}


def test_a_verified_file_is_linked_only_where_it_is_stored_as_is(tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "as-is", seed=33)
    weights = directory / "adapter_model.safetensors"
    sha = hashlib.sha256(weights.read_bytes()).hexdigest()
    with Registry.open(tmp_path / "home", create=True) as local:
        # A name the directory does not hold is ignored; the weights are linked.
        declared = {"adapter_model.safetensors": sha, "other.bin": "0" * 64}
        with verified_files(directory, declared):
            result = local.push(directory, name="as-is")
        assert result.created
        assert os.stat(local.blobs.path(sha)).st_ino == os.stat(weights).st_ino
        assert local.verify("as-is@1").ok
        # Declared for another directory: copied and hashed as usual.
        other = write_adapter(tmp_path / "copied", seed=34)
        copied = other / "adapter_model.safetensors"
        sha = hashlib.sha256(copied.read_bytes()).hexdigest()
        with verified_files(directory, {"adapter_model.safetensors": sha}):
            local.push(other, name="copied")
        assert os.stat(local.blobs.path(sha)).st_ino != os.stat(copied).st_ino


def test_a_bundle_push_links_its_staged_files(served: ServedRegistry, tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "bundled", seed=35)
    files = {p.name: p.read_bytes() for p in sorted(directory.iterdir())}
    digests = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    header = json.dumps(
        {
            "push": {"files": digests, "name": "bundled"},
            "sizes": {name: len(data) for name, data in files.items()},
        }
    ).encode()
    response = httpx2.post(
        f"{served.url}{API}/push/bundle", content=header + b"".join(files.values()),
        params={"header_bytes": len(header)},
        headers={"Authorization": f"Bearer {served.tokens['writer']}"},
    )  # fmt: skip
    assert response.status_code == 201, response.text
    with Registry.open(served.home, database_url=served.database_url) as local:
        blob = local.blobs.path(digests["adapter_model.safetensors"])
        # Stored from the staging file (linked; the staging copy is gone), read-only.
        assert os.stat(blob).st_nlink == 1 and not os.stat(blob).st_mode & 0o222
        assert local.verify("bundled@1").ok


def test_a_retried_upload_keeps_the_staged_file_from_gc(
    served: ServedRegistry, tmp_path: Path
) -> None:
    data = b"staged a day ago"
    sha = hashlib.sha256(data).hexdigest()
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    with httpx2.Client(base_url=served.url, headers=auth, timeout=60) as http:
        assert http.put(f"{API}/uploads/{sha}", content=data).status_code == 201
        staged = served.home / "tmp" / "uploads" / sha
        os.utime(staged, (1, 1))  # as old as gc's cut-off
        again = http.put(f"{API}/uploads/{sha}", content=data)
    assert again.status_code == 200 and again.json()["stored"] is False
    # Sent again just now: the push that follows must find it, so gc must not take it.
    assert staged.stat().st_mtime > 10**9


def test_a_server_killed_between_link_and_commit_leaves_an_orphan_gc_removes(
    tmp_path: Path,
) -> None:
    from support.server import new_home, running_server

    home = tmp_path / "home"
    database_url = f"sqlite:///{home / 'catalog.db'}"
    with new_home(home, database_url) as local:
        token = local.create_token("w", "writer").secret
    directory = write_adapter(tmp_path / "killed", seed=36)
    auth = {"Authorization": f"Bearer {token}"}
    crash = {"ADAPTERS_FAULT_POINT": "catalog.insert-version"}  # linked, rows not committed
    with running_server(home, crash) as server:
        with httpx2.Client(base_url=server.url, headers=auth, timeout=60) as http:
            files = stage_uploads(http, directory)
            with pytest.raises(httpx2.HTTPError):
                http.post(f"{API}/push", json={"files": files, "name": "killed"})
        server.process.wait(30)
    weights = files["adapter_model.safetensors"]
    with Registry.open(home) as local:
        assert not local.list(name="killed")  # no partial version
        assert local.blobs.exists(weights)  # the linked blob, referenced by nothing
        before = set(local.blobs.iter_digests())
        collected = local.gc()
        # gc takes the orphans of that push and nothing else; the staged uploads stay.
        assert {b.sha256 for b in collected.blobs} == set(files.values()) & before
        assert (local.store.tmp_dir / "uploads" / weights).is_file()
    with (
        running_server(home) as server,
        httpx2.Client(base_url=server.url, headers=auth, timeout=60) as http,
    ):
        files = stage_uploads(http, directory)  # already staged: nothing sent again
        response = http.post(f"{API}/push", json={"files": files, "name": "killed"})
    assert response.status_code == 201, response.text
    with Registry.open(home) as local:
        assert local.verify("killed@1").ok


def test_where_a_link_cannot_be_made_the_file_is_copied_and_hashed(tmp_path: Path) -> None:
    import shutil
    import tempfile

    from support.server import new_home

    other_fs = Path("/dev/shm")
    if not other_fs.is_dir() or os.stat(other_fs).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs /dev/shm on a filesystem other than the test's tmp")
    blobs = Path(tempfile.mkdtemp(prefix="adapters-blobs-", dir=other_fs))
    try:
        directory = write_adapter(tmp_path / "crossed", seed=37)
        weights = directory / "adapter_model.safetensors"
        sha = hashlib.sha256(weights.read_bytes()).hexdigest()
        home = tmp_path / "home"
        with new_home(home, f"sqlite:///{home / 'catalog.db'}", str(blobs)) as local:
            # Declared with a wrong digest: the copy that replaces the link hashes, and refuses.
            wrong = {"adapter_model.safetensors": "0" * 64}
            with verified_files(directory, wrong), pytest.raises(IntegrityError):
                local.push(directory, name="crossed")
            assert not local.list(name="crossed")
            with verified_files(directory, {"adapter_model.safetensors": sha}):
                assert local.push(directory, name="crossed").created
            stored = local.blobs.path(sha)
            assert os.stat(stored).st_dev != os.stat(weights).st_dev
            assert not os.stat(stored).st_mode & 0o222
            assert local.verify("crossed@1").ok
    finally:
        shutil.rmtree(blobs, ignore_errors=True)


def _with_extras(directory: Path) -> Path:
    """An adapter with a card, a trainer state, a tokenizer file and one file not stored."""
    (directory / "README.md").write_text("# card\n")
    (directory / "tokenizer.json").write_text("{}")
    (directory / "notes.dat").write_bytes(b"\x00\x01")
    state = {"global_step": 7, "log_history": [{"step": 7, "eval_loss": 0.25}]}
    (directory / "trainer_state.json").write_text(json.dumps(state))
    return directory


def test_staged_files_are_pushed_where_they_are_with_no_directory(tmp_path: Path) -> None:
    # The server's usual push: every file a staged upload, read and linked in place; the
    # directory the push names is never listed (here it does not even exist).
    source = _with_extras(write_adapter(tmp_path / "src", seed=36))
    staging = tmp_path / "uploads"
    staging.mkdir()
    staged = {}
    for path in sorted(source.iterdir()):
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        (staging / sha).write_bytes(path.read_bytes())
        staged[path.name] = (staging / sha, sha)
    with Registry.open(tmp_path / "home", create=True) as local:
        with staged_files(tmp_path / "nowhere", staged):
            result = local.push(tmp_path / "nowhere", name="staged")
        assert result.created
        weights = staged["adapter_model.safetensors"][1]
        assert os.stat(local.blobs.path(weights)).st_ino == os.stat(staging / weights).st_ino
        assert result.version == local.get("staged@1")  # as recorded, not only as built
        assert local.verify("staged@1").ok
        # The same as a push of the directory itself: files, notes, step and metrics.
        plain = local.push(source, name="plain")
        assert result.version.manifest.digest == plain.version.manifest.digest
        assert result.skipped == plain.skipped and any("notes.dat" in n for n in plain.skipped)
        assert result.version.tags == plain.version.tags == {"step": "7"}
        assert [(e.metric, e.value) for e in result.version.evals] == [("loss", 0.25)]


def test_a_push_of_uploads_matches_a_local_push_of_the_same_files(
    served: ServedRegistry, tmp_path: Path
) -> None:
    directory = _with_extras(write_adapter(tmp_path / "same", seed=37))
    (directory / "training_args.bin").write_bytes(b"not read")  # laid out as a directory
    auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
    results = {}
    with httpx2.Client(base_url=served.url, headers=auth, timeout=60) as http:
        for name, skip in (("same-plain", "training_args.bin"), ("same-laid-out", "")):
            files = {k: v for k, v in _upload_all(served, directory, http).items() if k != skip}
            response = http.post(f"{API}/push", json={"files": files, "name": name})
            assert response.status_code == 201, response.text
            results[name] = response.json()
    (directory / "training_args.bin").unlink()
    with Registry.open(tmp_path / "home", create=True) as local:
        expected = local.push(directory, name="same")
    for name, result in results.items():
        assert result["version"]["digest"] == expected.version.manifest.digest, name
        assert result["version"]["tags"] == {"step": "7"}
        skipped = [n for n in result["skipped"] if "training_args" not in n]
        assert skipped == list(expected.skipped), name
    assert any("training_args.bin" in n for n in results["same-laid-out"]["skipped"])
