"""Loading through PEFT (mode="peft") and unloading gives back the base exactly: every
module, parameter and buffer object and value, with PEFT's wrappers and attributes gone."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest
import torch
from support.models import make_inputs, outputs, save_base, tiny_bert, tiny_llama
from support.peft_adapters import perturb

from registry import Registry


@pytest.fixture
def reg(hermetic_env: Path) -> Registry:
    return Registry.open(hermetic_env, create=True)


def _state(model: torch.nn.Module) -> dict[str, tuple[int, torch.Tensor]]:
    return {k: (id(v), v.detach().clone()) for k, v in model.state_dict(keep_vars=True).items()}


def _assert_restored(model: torch.nn.Module, before: dict[str, tuple[int, torch.Tensor]]) -> None:
    after = model.state_dict(keep_vars=True)
    assert set(after) == set(before)
    for name, (identity, value) in before.items():
        assert id(after[name]) == identity, name
        assert torch.equal(after[name], value), name
    assert not any(isinstance(m, peft.tuners.tuners_utils.BaseTunerLayer) for m in model.modules())
    assert "ModulesToSaveWrapper" not in {type(m).__name__ for m in model.modules()}


def test_prompt_tuning_on_a_classifier_restores_the_head(reg: Registry, tmp_path: Path) -> None:
    # PEFT wraps the classifier in modules_to_save; its unload left the trained head in place.
    config = peft.PromptTuningConfig(task_type="SEQ_CLS", num_virtual_tokens=4)
    trained = peft.get_peft_model(tiny_bert(0), config)
    perturb(trained, seed=5)
    trained.save_pretrained(tmp_path / "adapter")
    base_dir = save_base(tiny_bert(0), tmp_path / "base")
    ref = reg.push(tmp_path / "adapter", name="bert-prompt", base_path=base_dir).version.ref

    model = tiny_bert(0)
    before = _state(model)
    expected_base = outputs(model, make_inputs())
    with reg.load(ref, model, mode="peft") as loaded:
        assert not torch.equal(outputs(loaded.model, make_inputs()), expected_base)
    _assert_restored(model, before)
    torch.testing.assert_close(outputs(model, make_inputs()), expected_base, rtol=0, atol=0)


def test_pissa_through_peft_gives_back_the_unrewritten_base(
    reg: Registry, tmp_path: Path
) -> None:
    # PEFT rewrites the base weights into PiSSA's residual when it loads the adapter.
    trained = peft.get_peft_model(
        tiny_llama(0),
        peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights="pissa"),
    )
    perturb(trained, seed=3)
    trained.save_pretrained(tmp_path / "adapter")
    base_dir = save_base(tiny_llama(0), tmp_path / "base")
    ref = reg.push(tmp_path / "adapter", name="pissa", base_path=base_dir).version.ref

    model = tiny_llama(0)
    before = _state(model)
    handle = reg.load(ref, model)
    assert handle.mode == "peft"
    handle.unload()
    _assert_restored(model, before)
