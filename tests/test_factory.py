"""Sanity checks that the test helpers (tests/support/models.py, peft_adapters.py) build
deterministic tiny bases and real, non-trivial, reloadable adapters."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from support.models import (
    BASE_BUILDERS,
    base_model,
    outputs,
    save_base,
    tiny_bert,
    tiny_gpt2,
    tiny_llama,
)
from support.peft_adapters import ALL_KINDS, BASE_NAMES, UNNAMED_KINDS, load_exported, make_adapter
from transformers import AutoModel, PreTrainedModel

BUILDERS = [tiny_llama, tiny_gpt2, tiny_bert]


@pytest.mark.parametrize("build", BUILDERS, ids=lambda b: b.__name__)
def test_base_models_are_deterministic(build: Callable[..., PreTrainedModel]) -> None:
    same = build(seed=0).state_dict()
    again = build(seed=0).state_dict()
    other = build(seed=1).state_dict()
    assert same.keys() == again.keys()
    assert all(torch.equal(same[k], again[k]) for k in same)
    assert any(not torch.equal(same[k], other[k]) for k in same)
    assert all(t.dtype == torch.float32 for t in same.values())


def test_save_base_writes_safetensors(tmp_path: Path) -> None:
    model = tiny_llama()
    path = save_base(model, tmp_path / "base")
    assert (path / "config.json").is_file()
    assert (path / "model.safetensors").is_file()
    reloaded = AutoModel.from_pretrained(path)
    assert reloaded.config.hidden_size == model.config.hidden_size


def test_both_name_cases_are_covered() -> None:
    assert UNNAMED_KINDS
    assert set(UNNAMED_KINDS) < set(ALL_KINDS)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_adapter_round_trips(kind: str, tmp_path: Path) -> None:
    made = make_adapter(kind, tmp_path / kind)

    assert (made.directory / "adapter_config.json").is_file()
    assert (made.directory / "adapter_model.safetensors").is_file()
    config = json.loads((made.directory / "adapter_config.json").read_text())
    assert config["peft_type"].lower() == made.method
    assert config["base_model_name_or_path"] == BASE_NAMES[kind] == made.base_model_name_or_path

    adapted = outputs(made.peft_model, made.inputs)
    plain = outputs(made.base_factory(), made.inputs)
    assert adapted.shape == plain.shape
    assert not torch.allclose(adapted, plain, atol=1e-4), "adapter does not change outputs"

    reloaded = outputs(load_exported(made, made.directory), made.inputs)
    assert torch.equal(adapted, reloaded)


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_tampered_weights_change_outputs(kind: str, tmp_path: Path) -> None:
    # Guards against round-trip checks that would pass whatever the saved weights contain.
    made = make_adapter(kind, tmp_path / kind)
    weights = made.directory / "adapter_model.safetensors"
    save_file({k: t * 0.5 for k, t in load_file(weights).items()}, weights)

    adapted = outputs(made.peft_model, made.inputs)
    tampered = outputs(load_exported(made, made.directory), made.inputs)
    assert not torch.equal(adapted, tampered)


@pytest.mark.parametrize("arch", sorted(BASE_BUILDERS))
def test_base_model_is_named_like_a_hub_model(arch: str) -> None:
    model = base_model(arch)
    assert model.name_or_path == model.config.name_or_path == f"tiny/{arch}"
    plain = BASE_BUILDERS[arch](0).state_dict()
    assert all(torch.equal(tensor, plain[key]) for key, tensor in model.state_dict().items())
