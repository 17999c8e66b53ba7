"""Small pieces of the Hub sync that need no server: names, settings, hashes, the card,
the registry manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.peft_adapters import make_adapter

from registry import Registry
from registry.errors import HubError, InvalidNameError
from registry.hub.card import build_card, read_card
from registry.hub.files import (
    CopiedFile,
    RemoteFile,
    copy_hashed,
    git_blob_id,
    lfs_pointer,
    mismatch,
)
from registry.hub.pull import parse_target
from registry.hub.push import tag_name
from registry.hub.remote_manifest import for_version, parse
from registry.hub.settings import HubSettings


def test_tag_names_follow_git_ref_rules() -> None:
    assert tag_name("3") == "v3"
    assert tag_name("1.0rc1") == "v1.0rc1"
    assert tag_name("1.0+local.7") == "v1.0+local.7"
    assert tag_name("1!2.0") == "v1!2.0"
    assert tag_name("1 2:3") == "v1-2-3"
    assert tag_name("2..lock") == "v2.lock"[:-5] + "-lock"


def test_hub_references_parse() -> None:
    assert parse_target("acme/my-lora") == ("acme/my-lora", "main")
    assert parse_target("acme/my-lora@v3") == ("acme/my-lora", "v3")
    assert parse_target("acme/my-lora@refs/pr/1") == ("acme/my-lora", "refs/pr/1")
    for bad in ("", "@v1", "acme/x@", "acme/x@a b"):
        with pytest.raises(InvalidNameError):
            parse_target(bad)


def test_settings_come_from_the_environment_and_hide_credentials(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "https://user:pass@hub.example.com:8443/mirror/?x=1")
    monkeypatch.setenv("HF_TOKEN", "hf_secret_value")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    settings = HubSettings.from_environment()
    assert settings.public_endpoint == "https://hub.example.com:8443/mirror"
    assert settings.offline and settings.cache_dir == tmp_path / "cache"
    assert settings.token == "hf_secret_value" and "hf_secret_value" not in repr(settings)


def test_files_are_checked_by_sha256_and_git_blob_id(tmp_path: Path) -> None:
    data = b"weights" * 100
    source = tmp_path / "source"
    source.write_bytes(data)
    copied = copy_hashed(source, tmp_path / "copy", "w.safetensors")
    assert (tmp_path / "copy").read_bytes() == data
    sha = copied.sha256
    as_lfs = RemoteFile("w", len(data), git_blob_id(lfs_pointer(sha, len(data))), sha)
    assert mismatch(copied, as_lfs) is None
    assert mismatch(copied, RemoteFile("w", len(data), git_blob_id(data))) is None
    other = CopiedFile("w", "0" * 64, len(data), "1" * 40)
    assert "sha256" in str(mismatch(other, as_lfs))
    assert "git blob id" in str(mismatch(other, RemoteFile("w", len(data), git_blob_id(data))))
    assert "bytes" in str(mismatch(copied, RemoteFile("w", 1, None, sha)))
    assert "no hash" in str(mismatch(copied, RemoteFile("w", None, None)))


def test_card_and_registry_manifest(tmp_path: Path) -> None:
    make_adapter("lora", tmp_path / "my-lora")
    with Registry.open(tmp_path / "reg", create=True) as reg:
        version = reg.push(
            tmp_path / "my-lora",
            evals={"accuracy": 0.9},
            eval_dataset="gsm8k",
            tags={"datasets": "org/train-set", "team": "nlp"},
            data=[tmp_path / "my-lora" / "adapter_config.json"],
        ).version
        local = reg.push(tmp_path / "my-lora", name="local-base", base="/models/my-base").version
    card_text = build_card(version, "acme/my-lora", "v1")
    assert card_text == build_card(version, "acme/my-lora", "v1")  # deterministic
    card_file = tmp_path / "README.md"
    card_file.write_text(card_text)
    facts = read_card(card_file)
    assert facts.base_model == "tiny/llama"
    assert [(e.metric, e.value, e.dataset) for e in facts.evals] == [("accuracy", 0.9, "gsm8k")]
    assert "datasets:\n- org/train-set" in card_text and "team:nlp" in card_text
    # A base that is not a Hub id stays out of the metadata.
    local_card = build_card(local, "acme/local", "v1")
    assert "base_model:" not in local_card and "/models/my-base" in local_card

    remote = for_version(version)
    assert remote.hub_paths["README.md"] == "registry/README.md"
    document = json.loads(remote.to_bytes())
    # Local paths stay local: only the file name of a training-data path is published.
    assert document["training_data"][0]["source"] == "adapter_config.json"
    assert parse(remote.to_bytes(), "here").digest == version.digest
    document["manifest"]["config"]["r"] = 64
    with pytest.raises(HubError, match="does not hold together"):
        parse(json.dumps(document).encode(), "here")
    with pytest.raises(HubError, match="format"):
        parse(b'{"format": "something-else"}', "here")
