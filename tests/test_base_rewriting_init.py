"""PiSSA-style adapters saved without conversion: PEFT rebuilds the base when it loads them,
so their factors are not a delta on the unchanged base. Loading gives PEFT's outputs (through
PEFT) or is refused; merge and combine refuse. Never silently wrong."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest
import torch
from support.models import make_inputs, outputs, save_base, tiny_llama
from support.peft_adapters import perturb

from registry import Registry
from registry.errors import UnsupportedMethodError
from registry.formats.lora_init import base_rewriting_init


@pytest.fixture
def reg(hermetic_env: Path) -> Registry:
    return Registry.open(hermetic_env, create=True)


def _pissa(directory: Path, *, converted: bool) -> Path:
    model = peft.get_peft_model(
        tiny_llama(0),
        peft.LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights="pissa"),
    )
    if converted:
        # PEFT's conversion compares against the factors as initialised
        model.peft_config["default"].init_lora_weights = True
        model.save_pretrained(directory / "initial")
        model.peft_config["default"].init_lora_weights = "pissa"
    perturb(model, seed=3)
    if converted:
        model.save_pretrained(
            directory / "adapter",
            path_initial_model_for_weight_conversion=str(directory / "initial"),
        )
    else:
        model.save_pretrained(directory / "adapter")
    return directory / "adapter"


def _peft_outputs(adapter: Path) -> torch.Tensor:
    return outputs(peft.PeftModel.from_pretrained(tiny_llama(0), str(adapter)), make_inputs())


def test_the_init_values_that_rewrite_the_base() -> None:
    for value in ("pissa", "pissa_niter_4", "olora", "corda", "loftq", "lora_ga"):
        assert base_rewriting_init("lora", {"init_lora_weights": value}) == value
    for value in (True, False, None, "gaussian", "eva", "orthogonal"):
        assert base_rewriting_init("lora", {"init_lora_weights": value}) is None
    assert base_rewriting_init("lora", {}) is None
    assert base_rewriting_init("ia3", {"init_lora_weights": "pissa"}) is None


def test_unconverted_pissa_loads_as_peft_does_or_is_refused(
    reg: Registry, tmp_path: Path
) -> None:
    adapter = _pissa(tmp_path, converted=False)
    base_dir = save_base(tiny_llama(0), tmp_path / "base")
    ref = reg.push(adapter, name="pissa", base_path=base_dir).version.ref
    expected = _peft_outputs(adapter)

    model = tiny_llama(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UnsupportedMethodError, match=r"init_lora_weights='pissa'.*mode='peft'"):
        reg.load(ref, model, mode="native")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())

    handle = reg.load(ref, model)  # auto: through PEFT, which rebuilds the residual base
    assert handle.mode == "peft"
    torch.testing.assert_close(outputs(handle.model, make_inputs()), expected)

    with pytest.raises(UnsupportedMethodError, match="without conversion"):
        reg.merge_into_base(ref, base_dir, tmp_path / "merged")
    assert not (tmp_path / "merged").exists()
    with pytest.raises(UnsupportedMethodError, match="without conversion"):
        reg.combine([ref, ref], name="two", method="cat")


def test_converted_pissa_is_an_ordinary_delta(reg: Registry, tmp_path: Path) -> None:
    adapter = _pissa(tmp_path, converted=True)
    base_dir = save_base(tiny_llama(0), tmp_path / "base")
    ref = reg.push(adapter, name="pissa", base_path=base_dir).version.ref
    handle = reg.load(ref, tiny_llama(0))
    assert handle.mode == "native"
    torch.testing.assert_close(
        outputs(handle.model, make_inputs()), _peft_outputs(adapter), rtol=1e-4, atol=1e-5
    )
