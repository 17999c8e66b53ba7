"""The base check on by default: push finds the base weights by name, an unverified base is
shown and never passes a check against a base, and exhaustive full-content digests."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner, Result
from safetensors.torch import load_file, save_file
from support.models import BASE_BUILDERS, save_base
from support.peft_adapters import make_adapter

from registry import Registry
from registry.bases.tensor_digests import digest_cache_dir
from registry.cli import main
from registry.errors import BaseModelMismatchError


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _set_base_name(adapter: Path, name: str) -> None:
    config_path = adapter / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["base_model_name_or_path"] = name
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))


def _hub_cache_snapshot(hf_home: Path, repo_id: str, weights: Path) -> None:
    """Lay ``weights`` out as huggingface_hub's cache does: refs/main -> snapshots/<sha>/."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    commit = "c0ffee" + "0" * 34
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in weights.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())


def _one_value_changed(source: Path, target: Path, tensor: str) -> Path:
    """A copy of the base in ``source`` with one element of ``tensor`` changed by one ulp,
    at an index the 64 samples do not look at."""
    from registry.bases.sampling import sample_indices

    target.mkdir()
    for file in source.iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    tensors = load_file(str(target / "model.safetensors"))
    flat = tensors[tensor].reshape(-1)
    sampled = set(sample_indices(tensor, flat.numel()))
    index = next(i for i in range(flat.numel()) if i not in sampled)
    flat[index] = torch.nextafter(flat[index], torch.tensor(float("inf"), dtype=flat.dtype))
    save_file(tensors, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


@pytest.fixture
def made(tmp_path: Path):  # type: ignore[no-untyped-def]
    return make_adapter("lora", tmp_path / "sql-lora")


def test_push_fingerprints_a_local_directory_named_in_the_config(
    sqlite_registry: Registry, made, tmp_path: Path
) -> None:
    right = save_base(made.base_factory(), tmp_path / "llama-base")
    other = save_base(BASE_BUILDERS["llama"](7), tmp_path / "llama-other")
    _set_base_name(made.directory, str(right))
    result = run("push", str(made.directory))
    assert result.exit_code == 0, result.output
    assert "warning" not in result.stderr
    assert sqlite_registry.get("sql-lora").base_verified
    wrong = run("verify", "sql-lora", "--base", str(other))
    assert wrong.exit_code == 1 and "not the weights trained on" in wrong.stdout
    assert run("verify", "sql-lora", "--base", str(right)).exit_code == 0


def test_push_fingerprints_a_hub_id_from_the_local_cache(
    sqlite_registry: Registry, made, tmp_path: Path
) -> None:
    weights = save_base(made.base_factory(), tmp_path / "weights")
    _hub_cache_snapshot(Path(os.environ["HF_HOME"]), "tiny-org/llama", weights)
    _set_base_name(made.directory, "tiny-org/llama")
    result = sqlite_registry.push(made.directory)
    assert result.base_unverified is None
    version = result.version
    assert version.base_verified and version.base_model.name == "tiny-org/llama"
    other = save_base(BASE_BUILDERS["llama"](7), tmp_path / "llama-other")
    with pytest.raises(BaseModelMismatchError):
        sqlite_registry.load(version.ref, BASE_BUILDERS["llama"](7))
    assert not sqlite_registry.verify(version.ref, base=str(other)).ok


def test_unverified_base_is_announced_shown_and_never_passes(
    sqlite_registry: Registry, made, tmp_path: Path
) -> None:
    _set_base_name(made.directory, "nowhere-org/not-cached")
    pushed = run("push", str(made.directory))
    assert pushed.exit_code == 0, pushed.output
    assert "warning: base nowhere-org/not-cached is unverified" in pushed.stderr
    assert "adapters base add" in pushed.stderr
    listed = run("list")
    assert "(unverified)" in listed.stdout
    assert json.loads(run("list", "--json").stdout)[0]["base_verified"] is False
    assert "never fingerprinted" in run("show", "sql-lora").stdout
    plain = json.loads(run("verify", "sql-lora", "--json").stdout)
    assert {"name": "base recorded", "status": "warn"}.items() <= plain["checks"][-1].items()

    other = save_base(BASE_BUILDERS["llama"](7), tmp_path / "llama-other")
    refused = run("verify", "sql-lora", "--base", str(other))
    assert refused.exit_code == 1
    assert "adapters base add" in refused.stdout and "--base-path" in refused.stdout
    allowed = run("verify", "sql-lora", "--base", str(other), "--allow-unverified-base")
    assert allowed.exit_code == 0, allowed.output
    with pytest.raises(BaseModelMismatchError, match="adapters base add"):
        sqlite_registry.load("sql-lora", BASE_BUILDERS["llama"](7))
    assert not sqlite_registry.check_compat("sql-lora", BASE_BUILDERS["llama"](7)).ok
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with sqlite_registry.load(
            "sql-lora", made.base_factory(), allow_unverified_base=True
        ) as loaded:
            assert loaded.mode == "native"

    # Recording the base afterwards under the name the adapter gives makes checks real.
    right = save_base(made.base_factory(), tmp_path / "llama-base")
    assert run("base", "add", str(right), "--name", "nowhere-org/not-cached").exit_code == 0
    assert run("verify", "sql-lora", "--base", str(right)).exit_code == 0
    assert run("verify", "sql-lora", "--base", str(other)).exit_code == 1


def test_push_result_json_reports_the_unverified_base(
    sqlite_registry: Registry, made
) -> None:
    _set_base_name(made.directory, "nowhere-org/not-cached")
    result = run("push", str(made.directory), "--json")
    assert "unverified" in json.loads(result.stdout)["base_unverified"]


def test_exhaustive_mode_finds_one_changed_value(
    sqlite_registry: Registry, made, tmp_path: Path
) -> None:
    right = save_base(made.base_factory(), tmp_path / "llama-base")
    tensor = "model.layers.0.self_attn.q_proj.weight"
    edited = _one_value_changed(right, tmp_path / "llama-edited", tensor)
    assert run("push", str(made.directory), "--base-path", str(right)).exit_code == 0
    # Sampled: the change is invisible.
    assert run("verify", "sql-lora", "--base", str(edited)).exit_code == 0
    # The record gains full digests; the same weights are not a new record.
    added = run("base", "add", str(right), "--name", "tiny/llama", "--exhaustive", "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["fingerprint"]["exhaustive"] is True
    caught = run("verify", "sql-lora", "--base", str(edited), "--exhaustive")
    assert caught.exit_code == 1 and tensor in caught.stdout
    good = run("verify", "sql-lora", "--base", str(right), "--exhaustive")
    assert good.exit_code == 0 and "compared in full" in good.stdout
    # Live module: the tensors the adapter binds to are hashed in full.
    model = made.base_factory()
    with torch.no_grad():
        flat = dict(model.named_parameters())[tensor].view(-1)
        flat[-1] = torch.nextafter(flat[-1], torch.tensor(float("inf")))
    with pytest.raises(BaseModelMismatchError, match="full contents"):
        sqlite_registry.load("sql-lora", model, exhaustive=True)
    with sqlite_registry.load("sql-lora", made.base_factory(), exhaustive=True) as loaded:
        assert loaded.report.ok


def test_file_digests_are_cached_and_invalidated(tmp_path: Path) -> None:
    from registry.bases.file_source import fingerprint_directory

    base = save_base(BASE_BUILDERS["llama"](0), tmp_path / "base")
    first = fingerprint_directory(base, exhaustive=True)
    cached = list(digest_cache_dir().glob("*.json"))
    assert len(cached) == 1 and first.is_exhaustive
    # A cache entry is trusted only for the same file identity: poison it, and it is used...
    document = json.loads(cached[0].read_text())
    name = next(iter(document["digests"]))
    document["digests"][name] = "sha256:" + "0" * 64
    cached[0].write_text(json.dumps(document))
    assert fingerprint_directory(base, exhaustive=True).digests[name] == "sha256:" + "0" * 64
    # ...until the file changes (mtime, ctime, size or inode): then it is hashed again.
    weights = base / "model.safetensors"
    os.utime(weights, ns=(1, 1))
    assert fingerprint_directory(base, exhaustive=True).digests == first.digests
