"""LoRA and DoRA on convolutions (Conv2d 3x3 and 1x1, Conv1d) against a real PEFT conv model."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest
import torch
from safetensors.torch import load_file, save_file
from support.models import tiny_conv
from support.ops_adapters import conv_adapter, read_adapter, state_of

from registry.formats import write_peft_adapter
from registry.ops.combine import combine
from registry.ops.fold import weight_updates
from registry.ops.merge import merge_checkpoint
from registry.ops.methods import CombineSpec
from registry.ops.updates import apply_update


def _folded(directory: Path) -> dict[str, torch.Tensor]:
    adapter = read_adapter(directory)
    state = dict(state_of(tiny_conv()))
    for update in weight_updates(adapter, {k: v.shape for k, v in state.items()}):
        state[update.target] = apply_update(state[update.target], update)
    return state


@pytest.mark.parametrize("dora", [False, True], ids=["lora", "dora"])
def test_conv_fold_and_streaming_merge_match_peft(dora: bool, tmp_path: Path) -> None:
    model = conv_adapter(tmp_path / "a", seed=1, use_dora=dora)
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    save_file(dict(state_of(tiny_conv())), str(base_dir / "model.safetensors"))
    x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected_out = model(x)
    theirs = model.merge_and_unload().state_dict()
    merge_checkpoint(read_adapter(tmp_path / "a"), base_dir, tmp_path / "merged")
    streamed = load_file(str(tmp_path / "merged" / "model.safetensors"))
    folded = _folded(tmp_path / "a")
    changed = 0
    for name, tensor in theirs.items():
        torch.testing.assert_close(folded[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
        torch.testing.assert_close(streamed[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
        changed += not torch.equal(tensor, state_of(tiny_conv())[name])
    assert changed == 4  # the four adapted weights; biases untouched
    plain = tiny_conv()
    plain.load_state_dict(streamed)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), expected_out, rtol=1e-5, atol=1e-6)


def _products(model: peft.PeftModel, name: str) -> dict[str, torch.Tensor]:
    return {
        key.removeprefix("base_model.model."): module.lora_B[name].weight.flatten(1)
        @ module.lora_A[name].weight.flatten(1)
        for key, module in model.named_modules()
        if name in getattr(module, "lora_A", {})
    }


def test_conv_cat_and_svd_match_peft(tmp_path: Path) -> None:
    # PEFT's svd reshapes Conv2d deltas only, so Conv1d joins the cat comparison alone.
    targets = ["conv1", "conv2", "head"]
    conv_adapter(tmp_path / "a", seed=1, target_modules=targets)
    conv_adapter(tmp_path / "b", seed=2, target_modules=targets, r=2, lora_alpha=6)
    conv_adapter(tmp_path / "c", seed=3)
    model = peft.PeftModel.from_pretrained(tiny_conv(), tmp_path / "a", adapter_name="a")
    model.load_adapter(tmp_path / "b", adapter_name="b")
    model.load_adapter(tmp_path / "c", adapter_name="c")
    model.add_weighted_adapter(["a", "b", "c"], [0.5, 1.0, 0.3], "cat", combination_type="cat")
    model.add_weighted_adapter(["a", "b"], [0.5, 1.0], "svd", combination_type="svd", svd_rank=3)
    parents = [read_adapter(tmp_path / n) for n in "abc"]
    for method, chosen, weights, rank in (
        ("cat", parents, (0.5, 1.0, 0.3), None),
        ("svd", parents[:2], (0.5, 1.0), 3),
    ):
        produced = combine(chosen, CombineSpec(method, weights, rank))
        out = tmp_path / f"out-{method}"
        write_peft_adapter(out, produced.config, produced.tensors)
        # Loading checks every factor's shape against the conv layers.
        ours = _products(peft.PeftModel.from_pretrained(tiny_conv(), out), "default")
        theirs = _products(model, method)
        assert set(ours) == set(theirs)
        for module, product in theirs.items():
            relative = float((ours[module] - product).norm() / product.norm())
            assert relative < 1e-5, (method, module)
