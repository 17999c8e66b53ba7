"""Adapters on transformers 5 models whose live tensor names differ from the saved ones.

ViT renames its attention and MLP modules on load; Mixtral fuses its per-expert weights. A base
recorded from its saved directory and the live model are the same weights, an adapter binds to
either, native load matches PEFT's forward, and merge matches PEFT's ``merge_and_unload``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import peft
import pytest
import torch
from safetensors.torch import load_file
from support.models import save_base
from support.renamed_models import (
    forward,
    mixtral_inputs,
    mixtral_v4_lora,
    state,
    tiny_mixtral,
    tiny_vit,
    vit_inputs,
    vit_lora,
)
from transformers import PreTrainedModel

from registry import Registry
from registry.bases.module_source import fingerprint_module

Case = tuple[
    Callable[[], PreTrainedModel], Callable[[Path], Path], Callable[[], dict[str, torch.Tensor]]
]
CASES: dict[str, Case] = {
    "vit": (tiny_vit, vit_lora, vit_inputs),
    "mixtral": (tiny_mixtral, mixtral_v4_lora, mixtral_inputs),
}


def _peft(build: Callable[[], PreTrainedModel], adapter: Path) -> peft.PeftModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peft.PeftModel.from_pretrained(build(), str(adapter)).eval()


def _pushed(registry: Registry, tmp_path: Path, case: str) -> tuple[Path, Path]:
    build, make, _ = CASES[case]
    base_dir = save_base(build(), tmp_path / "base")
    adapter = make(tmp_path / "adapter")
    registry.push(adapter, name=case, base_path=base_dir)
    return base_dir, adapter


@pytest.mark.parametrize("case", list(CASES))
def test_native_load_on_the_live_model_matches_peft(
    case: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    build, _, inputs = CASES[case]
    _, adapter = _pushed(sqlite_registry, tmp_path, case)
    model = build()
    before = state(model)
    expected = forward(_peft(build, adapter), inputs())
    with sqlite_registry.load(case, model) as loaded:
        assert loaded.mode == "native"
        assert loaded.report.ok, loaded.report.summary()
        got = forward(model, inputs())
    assert not torch.equal(got, forward(build(), inputs()))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("case", list(CASES))
def test_peft_mode_load_passes_the_base_checks(
    case: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    build, _, inputs = CASES[case]
    _, adapter = _pushed(sqlite_registry, tmp_path, case)
    expected = forward(_peft(build, adapter), inputs())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = sqlite_registry.load(case, build(), mode="peft")
    with loaded:
        torch.testing.assert_close(forward(loaded.model, inputs()), expected, rtol=0, atol=0)


@pytest.mark.parametrize("case", list(CASES))
def test_merge_into_the_saved_checkpoint_matches_peft(
    case: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    build, _, inputs = CASES[case]
    base_dir, adapter = _pushed(sqlite_registry, tmp_path, case)
    result = sqlite_registry.merge_into_base(case, base_dir, tmp_path / "merged")
    assert result.compat.coverage == 1.0
    merged_files = load_file(str(tmp_path / "merged" / "model.safetensors"))
    assert set(merged_files) == set(load_file(str(base_dir / "model.safetensors")))
    reference = _peft(build, adapter).merge_and_unload()
    merged = type(reference).from_pretrained(tmp_path / "merged").eval()
    expected = reference.state_dict()
    for name, tensor in merged.state_dict().items():
        torch.testing.assert_close(tensor, expected[name], rtol=1e-5, atol=1e-6, msg=name)
    torch.testing.assert_close(
        forward(merged, inputs()), forward(reference, inputs()), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("build", [tiny_vit, tiny_mixtral])
def test_a_live_fingerprint_equals_the_saved_directorys(
    build: Callable[[], PreTrainedModel], tmp_path: Path, sqlite_registry: Registry
) -> None:
    directory = save_base(build(), tmp_path / "base")
    recorded = sqlite_registry.add_base(directory, name="base")
    assert fingerprint_module(build()).content == recorded.content_digest


def test_an_exhaustive_load_digests_the_tensors_bound_under_live_names(
    tmp_path: Path, sqlite_registry: Registry
) -> None:
    base_dir = save_base(tiny_vit(), tmp_path / "base")
    sqlite_registry.push(
        vit_lora(tmp_path / "adapter"), name="vit", base_path=base_dir, exhaustive_base=True
    )
    with sqlite_registry.load("vit", tiny_vit(), exhaustive=True) as loaded:
        weights = next(c for c in loaded.report.checks if c.name == "weights")
    # q_proj and v_proj of both layers (saved as attention.attention.query / value), and the
    # classifier's weight and bias in modules_to_save.
    assert "6 tensors compared in full" in weights.detail, weights.detail
