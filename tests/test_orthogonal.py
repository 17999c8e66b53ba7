"""OFT and BOFT fold natively: the rotation peft computes, applied to the weight.

Native load matches PEFT's forward, unload gives back every tensor bit for bit, merge matches
``merge_and_unload``; layers the native path does not fold (a convolution) are
refused natively with the reason, and ``mode="auto"`` loads them through PEFT. (peft's OFT
and BOFT do not take GPT-2's Conv1D at all.)
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import peft
import pytest
import torch
from safetensors.torch import load_file
from support.models import make_inputs, outputs, save_base, tiny_conv, tiny_llama
from support.peft_adapters import perturb, save_peft

from registry import Registry
from registry.errors import UnsupportedMethodError

ATTN = ["q_proj", "v_proj"]
CONFIGS: dict[str, Any] = {
    "oft": lambda: peft.OFTConfig(r=0, oft_block_size=8, target_modules=ATTN),
    "oft-cayley": lambda: peft.OFTConfig(
        r=0, oft_block_size=8, target_modules=ATTN, use_cayley_neumann=False
    ),
    "oft-coft": lambda: peft.OFTConfig(
        r=4, oft_block_size=0, target_modules=ATTN, coft=True, eps=1e-3
    ),
    "oft-share": lambda: peft.OFTConfig(
        r=0, oft_block_size=8, target_modules=ATTN, block_share=True, module_dropout=0.1
    ),
    "boft": lambda: peft.BOFTConfig(boft_block_size=4, target_modules=ATTN),
    "boft-blocks": lambda: peft.BOFTConfig(
        boft_block_size=0,
        boft_block_num=4,
        target_modules=[*ATTN, "down_proj"],
        boft_dropout=0.1,
    ),
}


def _made(kind: str, directory: Path) -> tuple[Path, torch.Tensor]:
    model = peft.get_peft_model(tiny_llama(), CONFIGS[kind]())
    perturb(model, 3)
    model.eval()
    return save_peft(model, directory), outputs(model, make_inputs())


def _push(registry: Registry, tmp_path: Path, kind: str) -> tuple[Path, torch.Tensor]:
    directory, expected = _made(kind, tmp_path / "adapter")
    base_dir = save_base(tiny_llama(), tmp_path / "base")
    registry.push(directory, name=kind, base_path=base_dir)
    return directory, expected


@pytest.mark.parametrize("kind", list(CONFIGS))
def test_native_load_matches_peft_and_unloads_exactly(
    kind: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    _, expected = _push(sqlite_registry, tmp_path, kind)
    model = tiny_llama()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with sqlite_registry.load(kind, model) as loaded:
        assert loaded.mode == "native"
        assert "natively" in loaded.report.checks[0].detail
        torch.testing.assert_close(outputs(model, make_inputs()), expected, rtol=1e-5, atol=1e-5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("kind", ["oft", "boft-blocks"])
def test_merge_matches_merge_and_unload(
    kind: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    directory, _ = _push(sqlite_registry, tmp_path, kind)
    sqlite_registry.merge_into_base(kind, tmp_path / "base", tmp_path / "merged")
    merged = load_file(str(tmp_path / "merged" / "model.safetensors"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = peft.PeftModel.from_pretrained(tiny_llama(), str(directory)).merge_and_unload()
    for name, tensor in reference.state_dict().items():
        if name in merged:
            torch.testing.assert_close(merged[name], tensor, rtol=1e-5, atol=1e-6, msg=name)


def test_a_convolution_is_refused_natively_and_loads_through_peft(
    tmp_path: Path, sqlite_registry: Registry
) -> None:
    model = peft.get_peft_model(
        tiny_conv(), peft.OFTConfig(r=0, oft_block_size=3, target_modules=["conv1"])
    )
    perturb(model, 3)
    model.eval()
    pixels = torch.randn(1, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = model(pixels)
    directory = save_peft(model, tmp_path / "adapter")
    sqlite_registry.push(directory, name="conv", base="tiny/conv", base_module=tiny_conv())
    with pytest.raises(UnsupportedMethodError, match=r"only linear layers.*mode='peft'"):
        sqlite_registry.load("conv", tiny_conv(), mode="native")
    base = tiny_conv()
    with sqlite_registry.load("conv", base) as loaded:
        assert loaded.mode == "peft"
        with torch.no_grad():
            torch.testing.assert_close(loaded.model(pixels), expected, rtol=0, atol=0)
