"""Folding adapters into base weights gives what PEFT's merge_and_unload gives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from support.peft_adapters import load_exported, make_adapter

from registry.errors import UnsupportedMethodError
from registry.ops.fold import require_foldable, weight_updates
from registry.ops.tensors import load_adapter_tensors
from registry.ops.updates import apply_update

FOLDABLE_KINDS = [
    "lora",
    "rslora",
    "dora",
    "lora_patterns",
    "lora_embedding",
    "lora_gpt2",
    "lora_bert",
    "ia3",
    "loha",
    "lokr",
]


def folded_state(made_dir: Path, method: str, base: torch.nn.Module) -> dict[str, torch.Tensor]:
    config = json.loads((made_dir / "adapter_config.json").read_text())
    adapter = load_adapter_tensors(method, config, made_dir / "adapter_model.safetensors")
    state = {k: v.clone() for k, v in base.state_dict().items()}
    shapes = {k: v.shape for k, v in state.items()}
    for update in weight_updates(adapter, shapes):
        if update.optional and update.target not in state:
            continue
        state[update.target] = apply_update(state[update.target], update)
    return state


@pytest.mark.parametrize("kind", FOLDABLE_KINDS)
def test_fold_matches_peft_merge(kind: str, tmp_path: Path) -> None:
    made = make_adapter(kind, tmp_path / "a")
    ours = folded_state(made.directory, made.method, made.base_factory())
    merged = load_exported(made, made.directory).merge_and_unload()
    theirs = merged.state_dict()
    assert set(theirs) <= set(ours)
    changed = 0
    for name, tensor in theirs.items():
        torch.testing.assert_close(ours[name], tensor, rtol=1e-5, atol=1e-6, msg=name)
        changed += not torch.equal(tensor, made.base_factory().state_dict()[name])
    assert changed > 0


@pytest.mark.parametrize("method", ["prefix_tuning", "prompt_tuning", "p_tuning", "bottleneck"])
def test_unfoldable_methods_say_why(method: str) -> None:
    with pytest.raises(UnsupportedMethodError, match=r"no base weights|cannot be folded"):
        require_foldable(method)
