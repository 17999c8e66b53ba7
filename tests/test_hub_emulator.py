"""The Hub emulator answers the real huggingface_hub client the way the Hub does.

These drive HfApi, create_commit, hf_hub_download and snapshot_download directly, so a
registry test that passes against the emulator exercises the client's real code paths.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from huggingface_hub import (
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    hf_hub_download,
    snapshot_download,
)
from huggingface_hub.errors import (
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from support.hub_emulator import DEFAULT_TOKEN, HubEmulator, git_blob_oid, lfs_pointer

WEIGHTS = bytes(range(256)) * 40  # binary: uploaded through LFS


# huggingface_hub's LFS upload passes a file as data=, which httpx2 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


@pytest.fixture
def api(hub: HubEmulator) -> HfApi:
    return HfApi(endpoint=hub.url, token=DEFAULT_TOKEN)


def _upload(api: HfApi, repo_id: str, parent: str | None = None) -> str:
    info = api.create_commit(
        repo_id,
        [
            CommitOperationAdd("adapter_model.safetensors", WEIGHTS),
            CommitOperationAdd("README.md", b"---\nlibrary_name: peft\n---\nhello\n"),
        ],
        commit_message="upload",
        parent_commit=parent,
    )
    return info.oid


def test_repo_lifecycle_commit_tag_and_listing(hub: HubEmulator, api: HfApi) -> None:
    assert api.whoami()["name"] == "alice"
    url = api.create_repo("demo", exist_ok=True)
    assert url.repo_id == "alice/demo"
    assert api.create_repo("alice/demo", exist_ok=True).repo_id == "alice/demo"  # 409 -> ok
    first = api.model_info("alice/demo").sha
    assert first is not None

    commit = _upload(api, "alice/demo", parent=first)
    api.create_tag("alice/demo", tag="v1", revision=commit)

    info = api.model_info("alice/demo", revision="v1", files_metadata=True)
    assert info.sha == commit
    assert info.card_data is not None and info.card_data["library_name"] == "peft"
    siblings = {s.rfilename: s for s in info.siblings or []}
    weights = siblings["adapter_model.safetensors"]
    assert weights.lfs is not None and weights.lfs.sha256 == hashlib.sha256(WEIGHTS).hexdigest()
    assert weights.blob_id == git_blob_oid(lfs_pointer(weights.lfs.sha256, len(WEIGHTS)))
    readme = siblings["README.md"]
    assert readme.lfs is None and readme.blob_id == git_blob_oid(
        hub.file_bytes("alice/demo", "README.md")
    )

    tree = {f.path for f in api.list_repo_tree("alice/demo", recursive=True, revision=commit)}
    assert tree == {".gitattributes", "README.md", "adapter_model.safetensors"}
    refs = api.list_repo_refs("alice/demo")
    assert [(b.name, b.target_commit) for b in refs.branches] == [("main", commit)]
    assert [(t.name, t.target_commit) for t in refs.tags] == [("v1", commit)]
    assert [c.commit_id for c in api.list_repo_commits("alice/demo")] == [commit, first]


def test_unchanged_files_make_no_commit_and_deletions_do(hub: HubEmulator, api: HfApi) -> None:
    api.create_repo("demo")
    commit = _upload(api, "alice/demo")
    again = _upload(api, "alice/demo", parent=commit)
    assert again == commit and hub.commit_count("alice/demo") == 2

    deleted = api.create_commit(
        "alice/demo",
        [CommitOperationDelete("README.md")],
        commit_message="rm",
        parent_commit=commit,
    )
    assert "README.md" not in hub.head("alice/demo").files
    assert deleted.oid == hub.head("alice/demo").oid


def test_parent_commit_mismatch_is_412(api: HfApi) -> None:
    api.create_repo("demo")
    first = api.model_info("alice/demo").sha
    _upload(api, "alice/demo")
    with pytest.raises(HfHubHTTPError) as caught:
        api.create_commit(
            "alice/demo",
            [CommitOperationAdd("late.txt", b"late")],
            commit_message="late",
            parent_commit=first,
        )
    assert caught.value.response.status_code == 412


def test_error_codes_map_to_the_client_errors(hub: HubEmulator, api: HfApi, tmp_path: Path) -> None:
    api.create_repo("demo")
    _upload(api, "alice/demo")
    with pytest.raises(RepositoryNotFoundError):
        api.model_info("alice/nope")
    with pytest.raises(RevisionNotFoundError):
        api.model_info("alice/demo", revision="no-such-branch")
    with pytest.raises(RemoteEntryNotFoundError):
        hf_hub_download("alice/demo", "missing.txt", cache_dir=tmp_path / "c", endpoint=hub.url)
    # Private repos are invisible without the owner's token.
    api.create_repo("secret", private=True)
    with pytest.raises(RepositoryNotFoundError):
        HfApi(endpoint=hub.url, token=False).model_info("alice/secret")


def test_resolve_headers_ranges_and_a_dropped_download(
    hub: HubEmulator, api: HfApi, tmp_path: Path
) -> None:
    import httpx2

    api.create_repo("demo")
    commit = _upload(api, "alice/demo")
    url = f"{hub.url}/alice/demo/resolve/main/adapter_model.safetensors"
    head = httpx2.head(url)
    sha = hashlib.sha256(WEIGHTS).hexdigest()
    assert head.headers["X-Repo-Commit"] == commit
    assert head.headers["X-Linked-Etag"] == f'"{sha}"'
    assert head.headers["X-Linked-Size"] == str(len(WEIGHTS))
    ranged = httpx2.get(url, headers={"Range": "bytes=100-"})
    assert ranged.status_code == 206 and ranged.content == WEIGHTS[100:]

    # Dropped mid-body once: the client resumes with a Range request and gets every byte.
    hub.requests.clear()
    hub.faults.drop_download("adapter_model.safetensors", after_bytes=1000, times=1)
    folder = snapshot_download(
        "alice/demo", revision=commit, cache_dir=tmp_path / "cache", endpoint=hub.url
    )
    assert (Path(folder) / "adapter_model.safetensors").read_bytes() == WEIGHTS
    assert hub.downloads().count("adapter_model.safetensors") == 2


def test_tampering_keeps_the_metadata(hub: HubEmulator, api: HfApi, tmp_path: Path) -> None:
    api.create_repo("demo")
    _upload(api, "alice/demo")
    before = api.model_info("alice/demo", files_metadata=True).siblings
    hub.store.tamper("alice/demo", "adapter_model.safetensors")
    assert api.model_info("alice/demo", files_metadata=True).siblings == before
    path = hf_hub_download(
        "alice/demo", "adapter_model.safetensors", cache_dir=tmp_path / "c", endpoint=hub.url
    )
    data = Path(path).read_bytes()
    assert len(data) == len(WEIGHTS) and data != WEIGHTS


def test_no_xet_and_branches(hub: HubEmulator, api: HfApi) -> None:
    import httpx2

    api.create_repo("demo")
    token = httpx2.get(
        f"{hub.url}/api/models/alice/demo/xet-write-token/main",
        headers={"authorization": f"Bearer {DEFAULT_TOKEN}"},
    )
    assert token.status_code == 404
    api.create_branch("alice/demo", branch="feature/x")
    commit = api.create_commit(
        "alice/demo",
        [CommitOperationAdd("a.txt", b"a")],
        commit_message="on a branch",
        revision="feature/x",  # sent URL-quoted: feature%2Fx
    ).oid
    assert hub.head("alice/demo", "feature/x").oid == commit
    assert "a.txt" not in hub.head("alice/demo").files
