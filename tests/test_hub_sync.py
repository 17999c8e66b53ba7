"""Hub push, pull and status through ``Registry.hub``, against the emulator with the real
huggingface_hub client: round trips, re-pushes, branches, plain PEFT repos, digest-based
status."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from support.hub_emulator import HubEmulator
from support.models import outputs, save_base
from support.peft_adapters import MadeAdapter, load_exported, make_adapter

from registry import Registry
from registry.errors import HubError
from registry.hub.remote_manifest import MANIFEST_PATH
from registry.store.manifest import Lineage, ParentRef
from registry.store.push import PushRequest, push

# huggingface_hub's LFS upload passes a file as data=, which httpx2 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")


def fresh(tmp_path: Path, label: str) -> Registry:
    """A new SQLite registry of its own (independent of ADAPTERS_DATABASE_URL)."""
    return Registry.open(
        tmp_path / label, database_url=f"sqlite:///{tmp_path / f'{label}.db'}", create=True
    )


def _same_outputs(made: MadeAdapter, directory: Path) -> bool:
    loaded = load_exported(made, directory)
    return torch.allclose(outputs(loaded, made.inputs), outputs(made.peft_model, made.inputs))


def test_round_trip_keeps_digest_evals_lineage_data_and_base(
    hub: HubEmulator, lora: MadeAdapter, registry: Registry, tmp_path: Path
) -> None:
    source = fresh(tmp_path, "source")
    base_dir = save_base(lora.base_factory(), tmp_path / "base")
    parent = source.push(
        lora.directory,
        base_path=base_dir,
        data_hashes=["sha256:" + "ab" * 32],
        evals={"accuracy": 0.91},
        eval_dataset="gsm8k",
        eval_split="test",
        tags={"team": "nlp"},
    ).version
    source.record_eval(parent.ref, {"f1": 0.5}, dataset="squad", split="validation", notes="n")
    # A derived version: same files, recorded with its lineage (as `combine` records it).
    derived = push(
        source.store,
        PushRequest(
            directory=lora.directory,
            name="derived",
            base_path=base_dir,
            evals={"accuracy": 0.93},
            lineage=Lineage(
                "cat", (ParentRef(parent.name, parent.version, parent.digest, 1.0),), {"r": 4}
            ),
        ),
    ).version
    pushed = source.hub.push("my-lora@1", "alice/my-lora")
    derived_push = source.hub.push(derived.ref, "alice/derived")
    assert pushed.tag == "v1" and pushed.committed

    pulled = registry.hub.pull("alice/my-lora@v1")
    got = pulled.push.version
    original = source.get("my-lora@1")
    assert pulled.with_manifest and pulled.commit == pushed.commit
    assert (got.ref, got.digest) == (original.ref, original.digest)
    assert got.manifest == original.manifest  # base fingerprint, training data, files, config
    assert got.base_model.fingerprint is not None
    assert [(s.metric, s.value, s.dataset, s.split, s.notes) for s in got.evals] == [
        (s.metric, s.value, s.dataset, s.split, s.notes) for s in original.evals
    ]
    assert [(t.sha256, t.kind) for t in got.training_data] == [
        (t.sha256, t.kind) for t in original.training_data
    ]
    assert got.tags == {"team": "nlp"}

    lineage_pull = registry.hub.pull(f"alice/derived@{derived_push.commit}")
    assert lineage_pull.digest == derived.digest
    assert lineage_pull.push.version.manifest.lineage == derived.manifest.lineage

    exported = registry.export(got.ref, tmp_path / "exported")
    assert _same_outputs(lora, exported.directory)

    [link] = registry.hub.links(got.ref)
    assert (link.direction, link.repo_id, link.revision, link.commit) == (
        "pull",
        "alice/my-lora",
        "v1",
        pushed.commit,
    )
    [push_link] = source.hub.links("my-lora@1")
    assert (push_link.direction, push_link.tag, push_link.commit) == ("push", "v1", pushed.commit)
    actions = [e.action for e in registry.catalog.audit_events(got.name)]
    assert "hub-pull" in actions
    assert "hub-push" in [e.action for e in source.catalog.audit_events("my-lora")]


def test_one_commit_then_no_commit_and_a_moved_tag(
    hub: HubEmulator, lora: MadeAdapter, tmp_path: Path
) -> None:
    reg = fresh(tmp_path, "reg")
    reg.push(lora.directory, evals={"accuracy": 0.9})
    first = reg.hub.push("my-lora@1", "alice/my-lora")
    commits = hub.commit_count("alice/my-lora")
    assert commits == 2  # the repo's initial commit and this push: one commit
    head = hub.head("alice/my-lora")
    assert set(head.files) == {
        ".gitattributes",
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
        MANIFEST_PATH,
        "registry/README.md",
    }
    card = hub.file_bytes("alice/my-lora", "README.md").decode()
    for line in ("base_model: tiny/llama", "base_model_relation: adapter", "library_name: peft"):
        assert line in card
    assert "model-index" in card and "accuracy" in card
    # The version's own card is kept byte for byte.
    assert (
        hub.file_bytes("alice/my-lora", "registry/README.md")
        == (lora.directory / "README.md").read_bytes()
    )

    again = reg.hub.push("my-lora@1", "alice/my-lora")
    assert not again.committed and again.commit == first.commit
    assert hub.commit_count("alice/my-lora") == commits
    assert len(reg.hub.links("my-lora@1")) == 1

    reg.record_eval("my-lora@1", {"accuracy": 0.95})  # the card changes, the digest does not
    updated = reg.hub.push("my-lora@1", "alice/my-lora")
    assert updated.committed and updated.tag_moved
    assert hub.repo("alice/my-lora").tags["v1"] == updated.commit
    assert hub.commit_count("alice/my-lora") == commits + 1


def test_versions_branches_and_status(hub: HubEmulator, lora: MadeAdapter, tmp_path: Path) -> None:
    reg = fresh(tmp_path, "reg")
    reg.push(lora.directory)
    assert reg.hub.status("my-lora@1").repos[0].state == "missing"  # never pushed
    reg.hub.push("my-lora@1", "alice/my-lora")
    assert reg.hub.status("my-lora@1").in_sync

    # Version 2 has no card of its own: the push removes the copy version 1 left.
    second_dir = tmp_path / "second"
    make_adapter("lora", second_dir, seed=1)
    (second_dir / "README.md").unlink()
    reg.push(second_dir, name="my-lora")
    reg.hub.push("my-lora@2", "alice/my-lora")
    assert "registry/README.md" not in hub.head("alice/my-lora").files
    assert set(hub.repo("alice/my-lora").tags) == {"v1", "v2"}

    assert reg.hub.status("my-lora@2").in_sync
    older = reg.hub.status("my-lora@1").repos[0]
    assert (older.state, older.remote_ref) == ("remote-changed", "my-lora@2")
    third_dir = tmp_path / "third"
    make_adapter("lora", third_dir, seed=2)
    reg.push(third_dir, name="my-lora")
    ahead = reg.hub.status("my-lora@3").repos[0]
    assert (ahead.state, ahead.remote_ref) == ("local-ahead", "my-lora@2")

    # Someone replaces the weights on the Hub without the registry: same manifest, other bytes.
    hub.put_files("alice/my-lora", {"adapter_model.safetensors": b"\0" * 64})
    changed = reg.hub.status("my-lora@2").repos[0]
    assert changed.state == "remote-changed" and "adapter_model.safetensors" in changed.detail
    assert reg.hub.status("my-lora@2", repo_id="alice/none").repos[0].state == "missing"

    # A branch of its own; main stays as it was.
    main_head = hub.head("alice/my-lora").oid
    staged = reg.hub.push("my-lora@3", "alice/my-lora", branch="staging")
    assert hub.head("alice/my-lora", "staging").oid == staged.commit
    assert hub.head("alice/my-lora").oid == main_head
    assert hub.repo("alice/my-lora").tags["v3"] == staged.commit
    assert reg.hub.status("my-lora@3", repo_id="alice/my-lora", branch="staging").in_sync


def test_pull_a_plain_peft_repo(hub: HubEmulator, lora: MadeAdapter, tmp_path: Path) -> None:
    config = json.loads((lora.directory / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = None  # the card names the base instead
    card = (
        "---\nbase_model: tiny/llama\nlibrary_name: peft\nmodel-index:\n- name: plain\n"
        "  results:\n  - task: {type: text-generation}\n    dataset: {name: squad, type: squad, "
        "split: validation}\n    metrics:\n    - {type: accuracy, value: 0.8}\n"
        "    - {type: bad metric, value: 1.0}\n---\n# plain\n"
    )
    hub.put_files(
        "bob/plain",
        {
            "adapter_config.json": json.dumps(config).encode(),
            "adapter_model.safetensors": (
                lora.directory / "adapter_model.safetensors"
            ).read_bytes(),
            "README.md": card.encode(),
            "tokenizer.json": b"{}",
        },
    )
    reg = fresh(tmp_path, "reg")
    pulled = reg.hub.pull("bob/plain")
    version = pulled.push.version
    assert not pulled.with_manifest
    assert version.ref == "bob/plain@1" and version.base_model.name == "tiny/llama"
    assert [(s.metric, s.value, s.dataset, s.split) for s in version.evals] == [
        ("accuracy", 0.8, "squad", "validation")
    ]
    assert any("bad metric" in note for note in pulled.notes)
    assert "tokenizer.json" not in hub.downloads()
    # Its config was written by another tool (other bytes), yet it is the same adapter.
    assert reg.hub.status(version.ref).in_sync
    exported = reg.export(version.ref, tmp_path / "exported")
    assert _same_outputs(lora, exported.directory)

    hub.put_files("bob/not-an-adapter", {"config.json": b"{}"})
    with pytest.raises(HubError, match=r"no adapter_config\.json"):
        reg.hub.pull("bob/not-an-adapter")
    hub.put_files(
        "bob/pickled",
        {"adapter_config.json": json.dumps(config).encode(), "adapter_model.bin": b"\x80\x02"},
    )
    with pytest.raises(HubError, match="pickle"):
        reg.hub.pull("bob/pickled")


def test_private_repo_needs_the_token(
    hub: HubEmulator, lora: MadeAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = fresh(tmp_path, "reg")
    reg.push(lora.directory)
    reg.hub.push("my-lora@1", "alice/secret", private=True)
    assert hub.repo("alice/secret").private
    other = fresh(tmp_path, "other")
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(HubError, match=r"not found.*private"):
        other.hub.pull("alice/secret")
    assert other.catalog.count_versions() == 0
    monkeypatch.setenv("HF_TOKEN", "hf_emulator_alice_token")
    assert other.hub.pull("alice/secret").digest == reg.get("my-lora@1").digest


def test_uploads_fall_back_to_lfs_when_the_server_has_no_xet(
    hub: HubEmulator, lora: MadeAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    # As on a machine with hf_xet installed and HF_HUB_DISABLE_XET unset.
    monkeypatch.delenv("HF_HUB_DISABLE_XET")
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_XET", False)
    reg = fresh(tmp_path, "reg")
    reg.push(lora.directory)
    result = reg.hub.push("my-lora@1", "alice/my-lora")
    assert result.committed
    paths = [(r.method, r.path) for r in hub.requests]
    assert ("GET", "/api/models/alice/my-lora/xet-write-token/main") in paths
    assert any(method == "PUT" and path.startswith("/_lfs/") for method, path in paths)
    assert constants.HF_HUB_DISABLE_XET is False  # restored after the push


def test_a_tag_that_marks_another_adapter_is_refused(
    hub: HubEmulator, lora: MadeAdapter, tmp_path: Path
) -> None:
    first = fresh(tmp_path, "first")
    first.push(lora.directory)
    first.hub.push("my-lora@1", "alice/shared")
    commits = hub.commit_count("alice/shared")

    other_dir = tmp_path / "other"
    shutil.copytree(lora.directory, other_dir)
    (other_dir / "README.md").write_text("another card\n")
    second = fresh(tmp_path, "second")
    second.push(other_dir, name="my-lora")
    with pytest.raises(HubError, match=r"tag v1 .* already marks"):
        second.hub.push("my-lora@1", "alice/shared")
    assert hub.commit_count("alice/shared") == commits
    assert second.hub.links("my-lora@1") == []
