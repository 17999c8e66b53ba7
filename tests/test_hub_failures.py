"""Hub failures end in one clear ``HubError`` and leave nothing half-done: no version, no
blob references, no staging directory, no Hub link; on the Hub, no commit and no tag."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.hub_emulator import HubEmulator
from support.peft_adapters import MadeAdapter, make_adapter

from registry import Registry
from registry.errors import ConflictError, HubError
from registry.hub.remote_manifest import MANIFEST_PATH

# huggingface_hub's LFS upload passes a file as data=, which httpx2 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
def pushed(hub: HubEmulator, lora: MadeAdapter, tmp_path: Path) -> Registry:
    """A registry whose my-lora@1 is on the Hub as alice/my-lora (tag v1)."""
    source = fresh(tmp_path, "source")
    source.push(lora.directory, evals={"accuracy": 0.9})
    source.hub.push("my-lora@1", "alice/my-lora")
    return source


def fresh(tmp_path: Path, label: str) -> Registry:
    return Registry.open(
        tmp_path / label, database_url=f"sqlite:///{tmp_path / f'{label}.db'}", create=True
    )


def assert_nothing_imported(reg: Registry) -> None:
    assert reg.catalog.count_versions() == 0
    assert reg.catalog.referenced_blobs() == set()
    assert not any(reg.home.tmp_dir.glob("hub-*")), "a staging directory was left behind"
    assert not [e for e in reg.catalog.audit_events() if e.action.startswith("hub-")]


def test_a_tampered_lfs_file_is_refused_and_not_cached(
    hub: HubEmulator, pushed: Registry, tmp_path: Path
) -> None:
    target = fresh(tmp_path, "target")
    original = hub.file_bytes("alice/my-lora", "adapter_model.safetensors")
    hub.store.tamper("alice/my-lora", "adapter_model.safetensors")
    with pytest.raises(HubError) as caught:
        target.hub.pull("alice/my-lora@v1")
    message = str(caught.value)
    assert "adapter_model.safetensors" in message and "sha256" in message
    assert "nothing was imported" in message and "\n" not in message
    assert_nothing_imported(target)

    # The bad bytes were evicted from the HF cache: once the server is repaired, the next
    # pull downloads the file again and succeeds.
    sha = hub.head("alice/my-lora").files["adapter_model.safetensors"].lfs_sha256
    assert sha is not None
    hub.store.lfs[sha] = original
    assert target.hub.pull("alice/my-lora@v1").digest == pushed.get("my-lora@1").digest


def test_a_tampered_regular_file_is_refused(
    hub: HubEmulator, pushed: Registry, tmp_path: Path
) -> None:
    target = fresh(tmp_path, "target")
    hub.store.tamper("alice/my-lora", "adapter_config.json")
    with pytest.raises(HubError, match=r"adapter_config\.json .*git blob id"):
        target.hub.pull("alice/my-lora")
    assert_nothing_imported(target)


def test_a_manifest_that_does_not_hold_together_is_refused(
    hub: HubEmulator, pushed: Registry, tmp_path: Path
) -> None:
    target = fresh(tmp_path, "target")
    # A consistent commit (the Hub's hashes match) whose manifest lies about its digest.
    genuine = hub.file_bytes("alice/my-lora", MANIFEST_PATH)
    document = json.loads(genuine)
    document["digest"] = "sha256:" + "0" * 64
    hub.put_files("alice/my-lora", {MANIFEST_PATH: json.dumps(document).encode()})
    with pytest.raises(HubError, match="does not hold together"):
        target.hub.pull("alice/my-lora")
    assert_nothing_imported(target)

    # Weights replaced by a commit that keeps the genuine manifest.
    weights = {MANIFEST_PATH: genuine, "adapter_model.safetensors": b"\x01" * 128}
    hub.put_files("alice/my-lora", weights)
    with pytest.raises(HubError, match=r"does not match the registry manifest"):
        target.hub.pull("alice/my-lora@main")
    assert_nothing_imported(target)


def test_a_concurrent_push_is_refused_with_412_and_nothing_lands(
    hub: HubEmulator, lora: MadeAdapter, tmp_path: Path
) -> None:
    reg = fresh(tmp_path, "reg")
    reg.push(lora.directory)
    hub.store.create_repo("alice/my-lora")

    def someone_else_pushes(repo_id: str, branch: str) -> None:
        hub.faults.before_commit = None
        hub.put_files(repo_id, {"notes.txt": b"theirs\n"}, branch=branch)

    hub.faults.before_commit = someone_else_pushes
    with pytest.raises(HubError, match="moved while pushing") as caught:
        reg.hub.push("my-lora@1", "alice/my-lora")
    assert "another push landed first" in str(caught.value)
    repo = hub.repo("alice/my-lora")
    assert len(repo.commits) == 2  # the initial commit and theirs; none of ours
    assert repo.tags == {}
    assert reg.hub.links("my-lora@1") == []
    assert not [e for e in reg.catalog.audit_events() if e.action == "hub-push"]

    # Pushed again, it builds on their commit and keeps their file.
    retried = reg.hub.push("my-lora@1", "alice/my-lora")
    head = hub.head("alice/my-lora")
    assert retried.commit == head.oid and "notes.txt" in head.files
    assert repo.tags == {"v1": head.oid}


def test_missing_repo_and_revision(hub: HubEmulator, pushed: Registry, tmp_path: Path) -> None:
    target = fresh(tmp_path, "target")
    with pytest.raises(HubError, match=r"repository alice/nope not found on http://127\.0\.0\.1"):
        target.hub.pull("alice/nope")
    with pytest.raises(HubError, match=r"alice/my-lora has no revision 'v9'"):
        target.hub.pull("alice/my-lora@v9")
    with pytest.raises(HubError, match=r"has no revision"):
        target.hub.pull("alice/my-lora@" + "0" * 40)
    assert_nothing_imported(target)


def test_a_download_cut_once_resumes(hub: HubEmulator, pushed: Registry, tmp_path: Path) -> None:
    target = fresh(tmp_path, "target")
    hub.faults.drop_download("adapter_model.safetensors", after_bytes=500, times=1)
    assert target.hub.pull("alice/my-lora@v1").digest == pushed.get("my-lora@1").digest
    assert hub.downloads().count("adapter_model.safetensors") == 2


def test_a_server_that_keeps_going_away_ends_in_a_clean_error(
    hub: HubEmulator, pushed: Registry, tmp_path: Path
) -> None:
    target = fresh(tmp_path, "target")
    hub.faults.drop_download("adapter_model.safetensors", after_bytes=500, times=None)
    with pytest.raises(HubError, match="lost the connection") as caught:
        target.hub.pull("alice/my-lora@v1")
    assert "\n" not in str(caught.value)
    assert hub.downloads().count("adapter_model.safetensors") > 1  # the client retried
    assert_nothing_imported(target)


def test_token_problems_are_clear(
    hub: HubEmulator, lora: MadeAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = fresh(tmp_path, "reg")
    reg.push(lora.directory)
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_valid_token")
    with pytest.raises(HubError, match=r"refused the token \(401"):
        reg.hub.push("my-lora@1", "alice/my-lora")
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match="no Hugging Face token"):
        reg.hub.push("my-lora@1", "alice/my-lora")
    monkeypatch.setenv("HF_TOKEN", "hf_emulator_alice_token")
    with pytest.raises(HubError, match=r"no write access to bob/my-lora"):
        reg.hub.push("my-lora@1", "bob/my-lora")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(HubError, match="offline"):
        reg.hub.push("my-lora@1", "alice/my-lora")
    assert hub.store.repos == {}
    assert reg.hub.links("my-lora@1") == []


def test_a_version_that_exists_here_with_other_content_is_refused(
    hub: HubEmulator, pushed: Registry, lora: MadeAdapter, tmp_path: Path
) -> None:
    target = fresh(tmp_path, "target")
    other = make_adapter("lora", tmp_path / "other", seed=5)
    target.push(other.directory, name="my-lora")  # my-lora@1 here, other content
    with pytest.raises(ConflictError, match=r"my-lora@1 already exists here.*--name"):
        target.hub.pull("alice/my-lora@v1")
    assert target.catalog.count_versions() == 1
    renamed = target.hub.pull("alice/my-lora@v1", name="their-lora")
    assert renamed.ref == "their-lora@1" and renamed.digest == pushed.get("my-lora@1").digest


def test_a_server_error_is_reported_with_its_status(
    hub: HubEmulator, pushed: Registry, tmp_path: Path
) -> None:
    target = fresh(tmp_path, "target")
    hub.faults.fail("GET", r"^/api/models/alice/my-lora/revision/", 503, times=1)
    with pytest.raises(HubError, match=r"answered HTTP 503 for alice/my-lora"):
        target.hub.pull("alice/my-lora@v1")
    assert_nothing_imported(target)
    assert target.hub.pull("alice/my-lora@v1").ref == "my-lora@1"  # once the server is back
