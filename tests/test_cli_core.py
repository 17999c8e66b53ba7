"""The core commands end to end through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.peft_adapters import make_adapter

from registry import Registry
from registry.cli import main

LINE = re.compile(r"^([a-z0-9./_-]+)@(\S+) (sha256:[0-9a-f]{64})$")


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def lora_dir(tmp_path: Path) -> Path:
    return make_adapter("lora", tmp_path / "my-lora", seed=1).directory


def test_push_prints_ref_and_digest(registry: Registry, lora_dir: Path, tmp_path: Path) -> None:
    data = tmp_path / "train.jsonl"
    data.write_text('{"x": 1}\n')
    result = run(
        "push",
        str(lora_dir),
        "--data",
        str(data),
        "--eval",
        "accuracy=0.93",
        "--eval-dataset",
        "gsm8k",
        "--tag",
        "team=nlp",
        "--alias",
        "prod",
    )
    assert result.exit_code == 0, result.output
    match = LINE.match(result.stdout.strip())
    assert match, result.stdout
    assert match.group(1) == "my-lora" and match.group(2) == "1"
    version = registry.get("my-lora@prod")
    assert version.digest == match.group(3)
    assert version.tags == {"team": "nlp"}
    assert [(s.metric, s.value, s.dataset) for s in version.evals] == [("accuracy", 0.93, "gsm8k")]
    import hashlib

    assert version.training_data[0].sha256 == hashlib.sha256(data.read_bytes()).hexdigest()


def test_push_again_is_a_noop(registry: Registry, lora_dir: Path) -> None:
    first = run("push", str(lora_dir))
    again = run("push", str(lora_dir))
    assert first.exit_code == again.exit_code == 0
    assert first.stdout == again.stdout
    assert "already stored" in again.stderr
    assert len(registry.list()) == 1


def test_versions_increment_and_explicit_duplicate_is_refused(
    registry: Registry, tmp_path: Path
) -> None:
    a = make_adapter("lora", tmp_path / "a", seed=1).directory
    b = make_adapter("lora", tmp_path / "b", seed=2).directory
    assert run("push", str(a), "--name", "x", "--version", "1.0").exit_code == 0
    clash = run("push", str(b), "--name", "x", "--version", "1")
    assert clash.exit_code == 1
    assert "already exists with other content" in clash.stderr
    assert len(clash.stderr.strip().splitlines()) == 1
    ok = run("push", str(b), "--name", "x")
    assert ok.exit_code == 0 and ok.stdout.startswith("x@2 ")


def test_list_filters_and_json(registry: Registry, tmp_path: Path) -> None:
    run("push", str(make_adapter("lora", tmp_path / "l", seed=1).directory), "--name", "team/a")
    run("push", str(make_adapter("ia3", tmp_path / "i", seed=1).directory), "--name", "team/b")
    run(
        "push",
        str(make_adapter("lora", tmp_path / "o", seed=2).directory),
        "--name",
        "other",
        "--base",
        "org/base@abc123",
    )
    listed = json.loads(run("list", "--json").stdout)
    assert [v["ref"] for v in listed] == ["other@1", "team/a@1", "team/b@1"]
    assert [v["ref"] for v in json.loads(run("list", "--name", "team/*", "--json").stdout)] == [
        "team/a@1",
        "team/b@1",
    ]
    assert [v["ref"] for v in json.loads(run("list", "--method", "ia3", "--json").stdout)] == [
        "team/b@1"
    ]
    by_base = json.loads(run("list", "--base", "org/base", "--json").stdout)
    assert [v["ref"] for v in by_base] == ["other@1"]
    assert by_base[0]["base_model"] == {
        "name": "org/base",
        "revision": "abc123",
        "fingerprint": None,
    }
    table = run("list").stdout
    assert "team/a" in table and "NAME" in table


def test_show_json_has_whole_manifest(registry: Registry, lora_dir: Path) -> None:
    run("push", str(lora_dir), "--eval", "f1=0.5")
    shown = json.loads(run("show", "my-lora", "--json").stdout)
    manifest = shown["manifest"]
    assert manifest["method"] == "lora"
    assert {f["path"] for f in manifest["files"]} >= {
        "adapter_config.json",
        "adapter_model.safetensors",
    }
    assert manifest["config"]["peft_type"] == "LORA"
    assert shown["evals"][0]["metric"] == "f1"
    human = run("show", "my-lora@1")
    assert human.exit_code == 0 and "adapter_model.safetensors" in human.stdout


def test_verify_passes_then_fails_on_one_flipped_byte(registry: Registry, lora_dir: Path) -> None:
    run("push", str(lora_dir))
    good = run("verify", "my-lora")
    assert good.exit_code == 0, good.output
    assert "PASS" in good.stdout and "FAIL" not in good.stdout
    version = registry.get("my-lora")
    weights = version.manifest.file("adapter_model.safetensors")
    blob = registry.blobs.path(weights.sha256)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    bad = run("verify", "my-lora", "--json")
    assert bad.exit_code == 1
    report = json.loads(bad.stdout)
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert [c["name"] for c in failed] == ["file adapter_model.safetensors"]
    assert "adapter_model.safetensors" in failed[0]["detail"]
    # Export refuses the damaged blob and leaves no partial directory.
    out = lora_dir.parent / "out"
    refused = run("export", "my-lora", str(out))
    assert refused.exit_code == 1 and "adapter_model.safetensors" in refused.stderr
    assert not out.exists()


def test_export_refuses_non_empty_target(
    registry: Registry, lora_dir: Path, tmp_path: Path
) -> None:
    run("push", str(lora_dir))
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    refused = run("export", "my-lora", str(target))
    assert refused.exit_code == 1 and "not empty" in refused.stderr
    assert (target / "keep.txt").read_text() == "mine"
    replaced = run("export", "my-lora", str(target), "--overwrite")
    assert replaced.exit_code == 0
    assert not (target / "keep.txt").exists()
    assert (target / "adapter_model.safetensors").read_bytes() == (
        lora_dir / "adapter_model.safetensors"
    ).read_bytes()


def test_base_required_when_config_has_none(registry: Registry, tmp_path: Path) -> None:
    unnamed = make_adapter("lora_patterns", tmp_path / "p").directory
    refused = run("push", str(unnamed))
    assert refused.exit_code == 1 and "--base" in refused.stderr
    assert registry.list() == []
    assert run("push", str(unnamed), "--base", "tiny/llama@r1").exit_code == 0
    assert registry.get("p").base_model.revision == "r1"


def test_bad_option_values_are_usage_errors(registry: Registry, lora_dir: Path) -> None:
    assert run("push", str(lora_dir), "--eval", "accuracy").exit_code == 2
    assert run("push", str(lora_dir), "--eval", "accuracy=high").exit_code == 2
    assert run("push", str(lora_dir), "--eval", "accuracy=nan").exit_code == 2
    assert registry.list() == []


def test_unknown_refs_are_one_line_errors(registry: Registry) -> None:
    for ref in ("nope", "nope@1", "nope@prod", "Bad Name"):
        result = run("show", ref)
        assert result.exit_code == 1
        assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def test_data_hash_and_directory_digest(registry: Registry, lora_dir: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("a")
    given = "sha256:" + "ab" * 32
    assert run("push", str(lora_dir), "--data", str(corpus), "--data-hash", given).exit_code == 0
    kinds = {d.kind for d in registry.get("my-lora").training_data}
    assert kinds == {"directory", "given"}
    assert run("push", str(lora_dir), "--name", "z", "--data-hash", "sha256:xyz").exit_code == 1
