"""materialize: a verified, read-only PEFT directory from the cache, and a directory of
adapters laid out for servers; checked with the real peft loading what it wrote."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import peft
import pytest
import torch
from click.testing import CliRunner
from conftest import blobs_on
from support.models import outputs
from support.peft_adapters import make_adapter

from registry import Registry
from registry.cli.main import main
from registry.errors import ArgumentError, SignatureError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pushed(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Registry, object]:
    blobs_on(request, monkeypatch)  # local unless a test asks for s3 or azure
    registry: Registry = request.getfixturevalue("sqlite_registry")
    made = make_adapter("lora", tmp_path / "bot", seed=0)
    registry.push(made.directory, name="team/bot", alias="prod")
    return registry, made


ON_EACH_STORE = pytest.mark.parametrize("pushed", ["local", "s3", "azure"], indirect=True)


@ON_EACH_STORE
def test_materialize_is_read_only_peft_directory_that_peft_loads(pushed, tmp_path: Path) -> None:
    registry, made = pushed
    path = registry.materialize("team/bot@prod")
    version = registry.get("team/bot@prod")
    assert path == registry.home.root / "cache" / "materialized" / version.digest.split(":")[1]
    assert sorted(p.name for p in path.iterdir()) == sorted(f.path for f in version.files)
    for file in path.iterdir():
        assert not file.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert not path.stat().st_mode & stat.S_IWUSR
    loaded = peft.PeftModel.from_pretrained(made.base_factory(), str(path)).eval()
    assert torch.equal(outputs(loaded, made.inputs), outputs(made.peft_model, made.inputs))


def test_materialize_reuses_an_intact_copy_and_rebuilds_a_damaged_one(pushed) -> None:
    registry, _ = pushed
    path = registry.materialize("team/bot@1")
    weights = path / "adapter_model.safetensors"
    inode = weights.stat().st_ino
    assert registry.materialize("team/bot@1") == path
    assert weights.stat().st_ino == inode  # reused, not rewritten
    good = weights.read_bytes()

    # Same size, other bytes: only a re-hash sees it.
    path.chmod(0o755)
    weights.chmod(0o644)
    weights.write_bytes(bytes([good[0] ^ 1]) + good[1:])
    assert registry.materialize("team/bot@1") == path
    assert weights.read_bytes() != good
    assert registry.materialize("team/bot@1", rehash=True) == path
    assert (path / "adapter_model.safetensors").read_bytes() == good

    # Truncated: the size check rebuilds it.
    path.chmod(0o755)
    (path / "adapter_model.safetensors").chmod(0o644)
    (path / "adapter_model.safetensors").write_bytes(good[:10])
    assert registry.materialize("team/bot@1") == path
    assert (path / "adapter_model.safetensors").read_bytes() == good
    leftovers = [p.name for p in path.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


@ON_EACH_STORE
def test_several_processes_materialize_the_same_version(pushed) -> None:
    registry, _ = pushed
    code = (
        "from registry import Registry\n"
        "with Registry.open() as r: print(r.materialize('team/bot@prod'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = {p.communicate(timeout=120)[0].strip() for p in procs}
    assert all(p.returncode == 0 for p in procs)
    assert len(results) == 1
    path = Path(results.pop())
    assert registry.materialize("team/bot@prod", rehash=True) == path
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_cli_lays_out_one_folder_per_adapter_and_swaps_on_alias_move(
    pushed, tmp_path: Path
) -> None:
    registry, _ = pushed
    other = make_adapter("lora", tmp_path / "other", seed=3)
    registry.push(other.directory, name="sql-bot", alias="prod")
    into = tmp_path / "loras"
    result = CliRunner().invoke(
        main, ["materialize", "team/bot@prod", "sql-bot@prod", "--into", str(into), "--json"]
    )
    assert result.exit_code == 0, result.output
    laid = {entry["folder"]: entry for entry in json.loads(result.output)}
    assert sorted(laid) == ["sql-bot", "team--bot"]
    assert (into / "team--bot").is_symlink()
    assert (into / "team--bot").resolve() == registry.materialize("team/bot@prod")

    # The alias moves; materializing again swaps the folder to the new version.
    newer = make_adapter("lora", tmp_path / "bot2", seed=5)
    registry.push(newer.directory, name="team/bot", alias="prod")
    result = CliRunner().invoke(main, ["materialize", "team/bot@prod", "--into", str(into)])
    assert result.exit_code == 0, result.output
    assert (into / "team--bot").resolve() == registry.materialize("team/bot@2")
    assert (into / "sql-bot").is_symlink()  # left alone

    copied = tmp_path / "copies"
    result = CliRunner().invoke(
        main, ["materialize", "bot=team/bot@1", "--into", str(copied), "--copy"]
    )
    assert result.exit_code == 0, result.output
    assert (copied / "bot").is_dir() and not (copied / "bot").is_symlink()
    assert (copied / "bot" / "adapter_model.safetensors").read_bytes() == (
        registry.materialize("team/bot@1") / "adapter_model.safetensors"
    ).read_bytes()


def test_bad_layouts_are_refused_before_any_folder_changes(pushed, tmp_path: Path) -> None:
    registry, _ = pushed
    into = tmp_path / "loras"
    with pytest.raises(ArgumentError, match="share the folder"):
        registry.materialize_into(["team/bot@1", "team/bot@prod"], into)
    with pytest.raises(ArgumentError, match="invalid folder name"):
        registry.materialize_into({"../x": "team/bot@1"}, into)
    assert not into.exists() or list(into.iterdir()) == []
    result = CliRunner().invoke(main, ["materialize", "x=team/bot@1"])
    assert result.exit_code == 1
    assert "pass --into" in result.output


def test_materialize_follows_the_load_signature_policy(pushed) -> None:
    registry, _ = pushed
    (registry.home.root / "policy.json").write_text(
        json.dumps({"version": 1, "rules": [], "load": {"require_signature": True}})
    )
    with pytest.raises(SignatureError, match="adapters sign"):
        registry.materialize("team/bot@prod")
