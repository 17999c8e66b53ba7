"""LoRA's extras and the simple full-replacement types, natively and exactly.

Trainable tokens (inside LoRA and standalone, on untied and tied embeddings), ``lora_bias``,
``ensure_weight_tying`` and LN tuning, each built by the real peft on a tiny model: stored,
verified and exported byte for byte; the native load gives PEFT's output, the merge gives
``merge_and_unload``'s weights, unload restores every parameter and buffer bit for bit; and
where a fold cannot match PEFT, native load and merge refuse with the reason and the fix while
``mode="auto"`` loads through PEFT.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import peft
import pytest
import torch
from support.extra_adapters import EXTRAS, extra_base, make_extra
from support.models import make_inputs, outputs, save_base

from registry import Registry
from registry.errors import UnsupportedMethodError, ValidationError

ATOL = 1e-5


def _push(registry: Registry, kind: str, tmp_path: Path) -> tuple[str, Path, str]:
    directory = make_extra(kind, tmp_path / kind)
    arch = EXTRAS[kind].arch
    base_dir = save_base(extra_base(arch), tmp_path / f"base-{arch}")
    # transformers 5 saves the MoE's fused experts per expert: the live model is the base.
    base = {"base_module": extra_base(arch)} if arch == "moe" else {"base_path": base_dir}
    version = registry.push(directory, name=kind.replace("_", "-"), **base).version
    assert version.manifest.analysis == "full"
    assert registry.verify(version.ref).ok
    exported = registry.export(version.ref, tmp_path / "export").directory
    weights = "adapter_model.safetensors"
    assert (exported / weights).read_bytes() == (directory / weights).read_bytes()
    return version.ref, directory, arch


def _peft(arch: str, directory: Path) -> peft.PeftModel:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = peft.PeftModel.from_pretrained(extra_base(arch), str(directory))
    model.eval()
    return model


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    found = {k: v.detach().clone() for k, v in model.named_parameters(remove_duplicate=False)}
    found.update({k: v.detach().clone() for k, v in model.named_buffers(remove_duplicate=False)})
    return found


def _assert_native_exact(registry: Registry, ref: str, arch: str, expected: torch.Tensor) -> None:
    base = extra_base(arch)
    before = _state(base)
    with registry.load(ref, base, mode="native") as loaded:
        assert loaded.mode == "native"
        got = outputs(loaded.model, make_inputs(0))
        torch.testing.assert_close(got, expected, atol=ATOL, rtol=1e-5)
    after = _state(base)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)
    # A tie survives the load and the unload: still one tensor under both names.
    if arch == "gpt2":
        assert base.lm_head.weight is base.transformer.wte.weight


def _assert_merge_exact(
    registry: Registry, ref: str, arch: str, directory: Path, tmp_path: Path
) -> None:
    merged = registry.merge_into_base(ref, tmp_path / f"base-{arch}", tmp_path / "merged")
    model = type(extra_base(arch)).from_pretrained(merged.merged.directory)
    expected = _peft(arch, directory).merge_and_unload().state_dict()
    got = model.state_dict()
    for key, value in expected.items():
        if ".original_module." in key:
            continue  # LN tuning's merge_and_unload leaves PEFT's modules_to_save wrapper
        name = key.replace(".modules_to_save.default.", ".")
        torch.testing.assert_close(got[name], value, atol=ATOL, rtol=1e-5, msg=key)


EXACT = [
    "tokens_only",
    "lora_tokens",
    "lora_tokens_tied",
    "trainable_tokens",
    "trainable_tokens_tied",
    "lora_bias_gpt2",
    "lora_bias_bert",
    "ln_tuning",
    "ln_tuning_bert",
]


@pytest.mark.parametrize("kind", EXACT)
def test_native_load_and_merge_match_peft(
    kind: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    ref, directory, arch = _push(sqlite_registry, kind, tmp_path)
    expected = outputs(_peft(arch, directory), make_inputs(0))
    _assert_native_exact(sqlite_registry, ref, arch, expected)
    with sqlite_registry.load(ref, extra_base(arch)) as loaded:
        assert loaded.mode == "native"  # auto picks native: it is exact
    _assert_merge_exact(sqlite_registry, ref, arch, directory, tmp_path)


def test_tied_lora_changes_embedding_and_lm_head_alike(
    tmp_path: Path, sqlite_registry: Registry
) -> None:
    # ensure_weight_tying saves lm_head's factors as the embedding's, transposed: one change
    # to the one tensor both use. That is PEFT's merge_and_unload; peft 0.21.2's
    # from_pretrained drops the lm_head factors (its forward adapts the embedding only).
    ref, directory, arch = _push(sqlite_registry, "tied_lora", tmp_path)
    merged = _peft(arch, directory).merge_and_unload()
    assert merged.lm_head.weight is merged.transformer.wte.weight
    expected = outputs(merged, make_inputs(0))
    _assert_native_exact(sqlite_registry, ref, arch, expected)
    _assert_merge_exact(sqlite_registry, ref, arch, directory, tmp_path)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("lora_bias_llama", r"lora_bias trains a bias for model\.layers\.0\.self_attn\.q_proj"),
        ("untied_lora_on_tied", r"ties transformer\.wte\.weight to lm_head\.weight"),
        ("tied_modules_to_save", r"ties transformer\.wte\.weight to lm_head\.weight"),
        ("target_parameters", r"model\.layers\.0\.mlp\.experts has LoRA on its parameters"),
    ],
)
def test_what_a_fold_cannot_reproduce_loads_through_peft(
    kind: str, reason: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    ref, directory, arch = _push(sqlite_registry, kind, tmp_path)
    base = extra_base(arch)
    before = _state(base)
    with pytest.raises(UnsupportedMethodError, match=reason + r".*mode='peft'"):
        sqlite_registry.load(ref, base, mode="native")
    assert all(torch.equal(v, before[k]) for k, v in _state(base).items())
    expected = outputs(_peft(arch, directory), make_inputs(0))
    with sqlite_registry.load(ref, base) as loaded:
        assert loaded.mode == "peft"
        assert torch.equal(outputs(loaded.model, make_inputs(0)), expected)
    with (
        warnings.catch_warnings(),
        pytest.raises(UnsupportedMethodError, match=r"(cannot merge|parameters).*mode='peft'"),
    ):
        warnings.simplefilter("ignore")  # forced past the per-expert checkpoint names (moe)
        sqlite_registry.merge_into_base(
            ref, tmp_path / f"base-{arch}", tmp_path / "merged", force=arch == "moe"
        )
    assert not (tmp_path / "merged").exists()


def test_token_ids_outside_the_vocabulary_do_not_bind(
    tmp_path: Path, sqlite_registry: Registry
) -> None:
    ref, _, _ = _push(sqlite_registry, "trainable_tokens_tied", tmp_path)  # token id 100
    small = extra_base("gpt2")
    small.resize_token_embeddings(64)
    with pytest.raises(Exception, match=r"at least 101 rows"):
        sqlite_registry.load(ref, small, strict=True)


def test_target_parameters_are_checked_at_push(tmp_path: Path, sqlite_registry: Registry) -> None:
    directory = make_extra("target_parameters", tmp_path / "moe")
    config_path = directory / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config["r"] = 3  # the saved expert factors hold 4 ranks per expert
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True))
    with pytest.raises(ValidationError, match=r"experts.*not share a rank that is a multiple"):
        sqlite_registry.push(directory, name="moe")
    assert sqlite_registry.list() == []
