"""Real PEFT adapters of every method: push, verify, export, reload with PEFT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from support.models import outputs
from support.peft_adapters import ALL_KINDS, UNNAMED_KINDS, load_exported, make_adapter

from registry import Registry

EXPECTED_METHOD = {
    "lora": "lora",
    "rslora": "lora",
    "dora": "lora",
    "lora_patterns": "lora",
    "lora_embedding": "lora",
    "lora_gpt2": "lora",
    "lora_bert": "lora",
    "ia3": "ia3",
    "prefix_tuning": "prefix_tuning",
    "prompt_tuning": "prompt_tuning",
    "p_tuning": "p_tuning",
    "loha": "loha",
    "lokr": "lokr",
    "adalora": "adalora",
    "vera": "vera",
}


@pytest.fixture
def sqlite_registry(hermetic_env: Path) -> Registry:
    return Registry.open(hermetic_env, create=True)


def test_every_kind_is_covered() -> None:
    assert set(ALL_KINDS) == set(EXPECTED_METHOD)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_push_verify_export_reload(kind: str, tmp_path: Path, sqlite_registry: Registry) -> None:
    made = make_adapter(kind, tmp_path / "adapter")
    base = "tiny/llama" if kind in UNNAMED_KINDS else None
    result = sqlite_registry.push(
        made.directory, name=f"interop/{kind.replace('_', '-')}", base=base
    )
    assert result.created
    version = result.version
    assert version.method == EXPECTED_METHOD[kind]
    assert version.base_model.name == (base or made.base_model_name_or_path)

    report = sqlite_registry.verify(version.ref)
    assert report.ok, report.checks

    out = tmp_path / "export"
    exported = sqlite_registry.export(version.ref, out)
    assert "adapter_model.safetensors" in exported.files
    original = (made.directory / "adapter_model.safetensors").read_bytes()
    assert (out / "adapter_model.safetensors").read_bytes() == original
    # The stored config is PEFT's own layout with set-valued fields sorted.
    assert json.loads((out / "adapter_config.json").read_text()) == _sorted_config(
        json.loads((made.directory / "adapter_config.json").read_text())
    )

    reloaded = load_exported(made, out)
    assert torch.equal(outputs(reloaded, made.inputs), outputs(made.peft_model, made.inputs))


def _sorted_config(config: dict[str, object]) -> dict[str, object]:
    for key in ("target_modules", "modules_to_save", "feedforward_modules"):
        value = config.get(key)
        if isinstance(value, list):
            config[key] = sorted(value)
    return config


def test_same_adapter_saved_twice_has_one_digest(tmp_path: Path, sqlite_registry: Registry) -> None:
    first = make_adapter("lora", tmp_path / "a", seed=3)
    config_path = first.directory / "adapter_config.json"
    config = json.loads(config_path.read_text())
    # PEFT writes target_modules in set order: simulate the other order of another process.
    config["target_modules"] = list(reversed(sorted(config["target_modules"])))
    second_dir = tmp_path / "b"
    second_dir.mkdir()
    (second_dir / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    for other in first.directory.iterdir():
        if other.name != "adapter_config.json":
            (second_dir / other.name).write_bytes(other.read_bytes())
    a = sqlite_registry.push(first.directory, name="same")
    b = sqlite_registry.push(second_dir, name="same")
    assert a.created and not b.created
    assert a.version.digest == b.version.digest and b.version.version == "1"
