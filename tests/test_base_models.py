"""Base model records, relations, `verify --base`, and the quantization check."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.models import BASE_BUILDERS, save_base
from support.peft_adapters import make_adapter

from registry import Registry
from registry.cli import main
from registry.runtime.loader import AdapterCompatibilityWarning


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture
def setup(registry: Registry, tmp_path: Path) -> tuple[Registry, Path, Path, object]:
    made = make_adapter("lora", tmp_path / "sql-lora")
    right = save_base(made.base_factory(), tmp_path / "llama-base")
    other = save_base(BASE_BUILDERS["llama"](7), tmp_path / "llama-instruct")
    result = run("push", str(made.directory), "--base-path", str(right))
    assert result.exit_code == 0, result.output
    return registry, right, other, made


def test_push_with_base_path_records_the_fingerprint(setup: tuple) -> None:
    registry, _right, _other, _made = setup
    version = registry.get("sql-lora")
    assert version.base_model.name == "tiny/llama"
    assert version.base_model.fingerprint and version.base_model.fingerprint.startswith("sha256:")
    listed = json.loads(run("base", "list", "--json").stdout)
    assert [b["name"] for b in listed["bases"]] == ["tiny/llama"]
    assert listed["bases"][0]["fingerprint"]["content"] == version.base_model.fingerprint


def test_verify_against_bases(setup: tuple) -> None:
    _registry, right, other, _made = setup
    good = run("verify", "sql-lora", "--base", str(right))
    assert good.exit_code == 0, good.output
    assert "base weights" in good.stdout and "identical" in good.stdout
    bad = run("verify", "sql-lora", "--base", str(other), "--json")
    assert bad.exit_code == 1
    failed = {c["name"] for c in json.loads(bad.stdout)["checks"] if c["status"] == "fail"}
    assert failed == {"base weights"}


def test_equivalent_relation_lets_other_weights_pass(setup: tuple) -> None:
    registry, _right, other, _made = setup
    assert run("base", "add", str(other), "--name", "tiny/llama-mirror").exit_code == 0
    assert run("verify", "sql-lora", "--base", "tiny/llama-mirror").exit_code == 1
    linked = run("base", "link", "tiny/llama-mirror", "tiny/llama", "--relation", "equivalent")
    assert linked.exit_code == 0 and "equivalent" in linked.stdout
    assert run("verify", "sql-lora", "--base", "tiny/llama-mirror").exit_code == 0
    model = BASE_BUILDERS["llama"](7)
    with registry.load("sql-lora", model) as handle:
        assert handle.report.ok


def test_same_name_other_weights_is_a_conflict(setup: tuple) -> None:
    _registry, _right, other, _made = setup
    clash = run("base", "add", str(other), "--name", "tiny/llama")
    assert clash.exit_code == 1 and "recorded with other weights" in clash.stderr


def test_base_add_from_hub_cache_layout(
    setup: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _registry, right, _other, _made = setup
    cache = tmp_path / "hf" / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--tiny--llama" / "snapshots" / commit
    shutil.copytree(right, snapshot)
    (cache / "models--tiny--llama" / "refs").mkdir(parents=True)
    (cache / "models--tiny--llama" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    added = run("base", "add", "tiny/llama@main", "--json")
    assert added.exit_code == 0, added.output
    record = json.loads(added.stdout)
    assert record["revision"] == "main"
    assert run("verify", "sql-lora", "--base", "tiny/llama@main").exit_code == 0


def test_qlora_trained_adapter_warns_on_unquantized_base(
    registry: Registry, tmp_path: Path
) -> None:
    made = make_adapter("lora", tmp_path / "qlora")
    right = save_base(made.base_factory(), tmp_path / "base")
    registry.push(made.directory, name="qlora", base_path=right, base_quantization="nf4")
    with pytest.warns(AdapterCompatibilityWarning, match="nf4-quantized"):
        handle = registry.load("qlora", made.base_factory())
    handle.unload()


def test_requires_is_checked_at_load(registry: Registry, tmp_path: Path) -> None:
    made = make_adapter("lora", tmp_path / "needs")
    registry.push(made.directory, name="needs", requires={"torch": ">=99"})
    with pytest.raises(Exception, match=r"torch>=99 required"):
        registry.load("needs", made.base_factory())
    bad = run("push", str(made.directory), "--name", "x", "--requires", "torch")
    assert bad.exit_code == 2


def test_find_base_reads_records_as_the_list_does(registry: Registry, tmp_path: Path) -> None:
    # On SQLite the lookup a push makes reads by the driver, outside any session; the
    # records must be the very ones every other read gives.
    from registry.store.catalog.base_rows import find_base

    weights = save_base(BASE_BUILDERS["llama"](0), tmp_path / "w")
    other = save_base(BASE_BUILDERS["llama"](3), tmp_path / "o")
    registry.add_base(weights, name="org/m")
    registry.add_base(other, name="org/m@v2")
    registry.add_base(other, name="org/n@v1")
    registry.add_base(weights, name="org/n@v2")
    listed = {b.ref: b for b in registry.bases()}
    catalog = registry.store.catalog
    assert find_base(catalog, "org/m") == listed["org/m"]  # the one without a revision
    assert find_base(catalog, "org/m", "v2") == listed["org/m@v2"]
    assert find_base(catalog, "org/n") == listed["org/n@v2"]  # else the newest
    assert find_base(catalog, "org/n", exact=True) is None
    assert find_base(catalog, "org/n", "v1") == listed["org/n@v1"]
    assert find_base(catalog, "org/x") is None


def test_a_base_record_may_be_named_with_a_space_but_not_a_control_character(
    registry: Registry, tmp_path: Path
) -> None:
    # A base read from a local path keeps that path as its name, and paths hold spaces.
    from registry.errors import InvalidNameError

    weights = save_base(BASE_BUILDERS["llama"](0), tmp_path / "My Models" / "llama")
    record = registry.add_base(weights, name="/data/My Models/llama")
    assert record.name == "/data/My Models/llama"
    with pytest.raises(InvalidNameError, match="printable"):
        registry.add_base(weights, name="llama\tbase")
