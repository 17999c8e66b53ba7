"""A directory holding several adapters (PEFT's multi-adapter save) pushed in one call."""

from __future__ import annotations

import json
from pathlib import Path

import peft
import pytest
from click.testing import CliRunner
from support.models import base_model

from registry import Registry
from registry.cli import main as cli_main
from registry.errors import ArgumentError, InvalidNameError


def _save_three(directory: Path) -> Path:
    """What peft 0.21.2's save_pretrained writes for adapters default, Second and third."""
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    model = peft.get_peft_model(base_model("llama"), config)
    model.add_adapter("Second", peft.LoraConfig(r=2, target_modules=["q_proj"]))
    model.add_adapter("third", peft.LoraConfig(r=8, target_modules=["k_proj"], use_dora=True))
    model.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = _save_three(tmp_path_factory.mktemp("multi") / "multi")
    # The layout this test relies on: the default at the top, the others in subfolders.
    assert (directory / "adapter_config.json").is_file()
    assert sorted(p.name for p in directory.iterdir() if p.is_dir()) == ["Second", "third"]
    return directory


def test_push_all_stores_each_adapter_as_its_own_name(
    saved: Path, sqlite_registry: Registry
) -> None:
    result = sqlite_registry.push_all(saved, base="tiny/llama")
    assert result.ok
    assert [(a.subfolder, a.name) for a in result.adapters] == [
        ("", "multi"),
        ("Second", "multi/second"),
        ("third", "multi/third"),
    ]
    methods = {a.name: a.result.version.method for a in result.adapters if a.result}
    assert methods == {"multi": "lora", "multi/second": "lora", "multi/third": "lora"}
    assert result.summary == "3 adapters: 3 stored, 0 already stored, 0 refused"
    # Each one is an ordinary version: exported as the subfolder PEFT wrote.
    out = sqlite_registry.export("multi/second", saved.parent / "out")
    for name in out.files:
        if name != "adapter_config.json":
            assert (out.directory / name).read_bytes() == (saved / "Second" / name).read_bytes()
    again = sqlite_registry.push_all(saved, base="tiny/llama")
    assert again.summary == "3 adapters: 0 stored, 3 already stored, 0 refused"


def test_push_all_checks_every_name_first_and_refuses_one_without_stopping_others(
    saved: Path, sqlite_registry: Registry, tmp_path: Path
) -> None:
    with pytest.raises(InvalidNameError, match=r"Second/ -> 'x/multi/second'.*--name-template"):
        sqlite_registry.push_all(saved, name="x/multi", base="tiny/llama")
    assert sqlite_registry.count() == 0
    with pytest.raises(ArgumentError, match=r"has no \{adapter\}"):
        sqlite_registry.push_all(saved, name_template="{name}", base="tiny/llama")
    with pytest.raises(ArgumentError, match="an alias names one version"):
        sqlite_registry.push_all(saved, alias="prod", base="tiny/llama")
    # One broken subfolder is refused on its own; the others are stored.
    broken = tmp_path / "broken"
    broken.mkdir()
    for path in saved.rglob("*"):
        target = broken / path.relative_to(saved)
        if path.is_dir():
            target.mkdir()
        else:
            target.write_bytes(path.read_bytes())
    config = json.loads((broken / "third" / "adapter_config.json").read_text())
    config["target_modules"] = 7
    (broken / "third" / "adapter_config.json").write_text(json.dumps(config))
    result = sqlite_registry.push_all(broken, name_template="{name}-{adapter}", base="tiny/llama")
    assert not result.ok
    assert [a.name for a in result.adapters if a.result] == ["broken", "broken-second"]
    (refused,) = [a for a in result.adapters if a.error]
    assert refused.name == "broken-third" and "target_modules" in (refused.error or "")
    assert sqlite_registry.count() == 2


def test_push_without_the_flag_says_how_many_and_how(
    saved: Path, sqlite_registry: Registry
) -> None:
    result = sqlite_registry.push(saved, base="tiny/llama")
    assert result.version.name == "multi"
    (note,) = [s for s in result.skipped if "holds 3 adapters" in s]
    assert "'Second'/, 'third'/" in note or "Second/, third/" in note
    assert "--all-adapters" in note


def test_cli_push_all_adapters(saved: Path, sqlite_registry: Registry) -> None:
    runner = CliRunner()
    done = runner.invoke(cli_main, ["push", str(saved), "--all-adapters", "--base", "tiny/llama"])
    assert done.exit_code == 0, done.output
    assert "Second/ stored multi/second@1 sha256:" in done.stdout
    assert "3 adapters: 3 stored, 0 already stored, 0 refused" in done.stderr
    as_json = runner.invoke(
        cli_main, ["push", str(saved), "--all-adapters", "--base", "tiny/llama", "--json"]
    )
    assert as_json.exit_code == 0, as_json.output
    document = json.loads(as_json.stdout)
    assert document["ok"] and len(document["adapters"]) == 3
    usage = runner.invoke(cli_main, ["push", str(saved), "--name-template", "{name}-{adapter}"])
    assert usage.exit_code == 2
    assert "--name-template applies only with --all-adapters" in usage.output
