"""Loading adapters onto live models: right base, wrong base, casts, hot-swap, PEFT path."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from conftest import blobs_on
from support.models import BASE_BUILDERS, outputs, save_base
from support.peft_adapters import KIND_ARCH, UNNAMED_KINDS, make_adapter

from registry import Registry
from registry.errors import BaseModelMismatchError, IntegrityError
from registry.runtime.loader import AdapterCompatibilityWarning

NATIVE_KINDS = [
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
PEFT_KINDS = ["prefix_tuning", "prompt_tuning", "p_tuning", "adalora", "vera"]


@pytest.fixture
def reg(
    hermetic_env: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Registry:
    blobs_on(request, monkeypatch)  # local unless a test asks for s3
    return Registry.open(hermetic_env, create=True)


def push_with_base(reg: Registry, kind: str, tmp_path: Path, seed: int = 0) -> tuple[str, object]:
    made = make_adapter(kind, tmp_path / f"adapter-{kind}-{seed}", seed=seed)
    base_dir = save_base(made.base_factory(), tmp_path / f"base-{kind}-{seed}")
    base = f"tiny/{KIND_ARCH[kind]}" if kind in UNNAMED_KINDS else None
    pushed = reg.push(
        made.directory, name=f"t/{kind.replace('_', '-')}", base=base, base_path=base_dir
    )
    return pushed.version.ref, made


def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_state(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> None:
    after = model.state_dict()
    assert set(after) == set(before)
    for name, tensor in before.items():
        assert torch.equal(after[name], tensor), name


@pytest.mark.parametrize("kind", NATIVE_KINDS)
def test_native_load_matches_peft_outputs(kind: str, tmp_path: Path, reg: Registry) -> None:
    ref, made = push_with_base(reg, kind, tmp_path)
    model = made.base_factory()
    before = snapshot(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AdapterCompatibilityWarning)
        handle = reg.load(ref, model)
    assert handle.mode == "native" and handle.report.ok
    torch.testing.assert_close(
        outputs(handle.model, made.inputs),
        outputs(made.peft_model, made.inputs),
        rtol=1e-4,
        atol=1e-5,
    )
    handle.unload()
    assert_same_state(model, before)


def test_wrong_base_same_shapes_is_refused_untouched(tmp_path: Path, reg: Registry) -> None:
    ref, _made = push_with_base(reg, "lora", tmp_path)
    other = BASE_BUILDERS["llama"](7)  # same config, other weights (an "instruct" variant)
    before = snapshot(other)
    with pytest.raises(BaseModelMismatchError) as caught:
        reg.load(ref, other)
    message = str(caught.value)
    assert "different weights" in message and "sampled values differ" in message
    assert "strict=False" in message and "adapters base link" in message
    assert not caught.value.report.ok  # type: ignore[attr-defined]
    assert_same_state(other, before)


def test_bf16_cast_of_the_right_base_is_accepted_with_a_note(tmp_path: Path, reg: Registry) -> None:
    ref, made = push_with_base(reg, "lora", tmp_path)
    model = made.base_factory().to(torch.bfloat16)
    with pytest.warns(AdapterCompatibilityWarning, match="cast to another dtype"):
        handle = reg.load(ref, model)
    weights = next(c for c in handle.report.checks if c.name == "weights")
    assert weights.status == "warn" and "F32 -> BF16" in weights.detail
    handle.unload()


def test_base_missing_a_target_module_is_refused_naming_it(tmp_path: Path, reg: Registry) -> None:
    ref, made = push_with_base(reg, "lora", tmp_path)
    model = made.base_factory()
    # A base whose layer 1 attention lacks v_proj: the adapter's tensors there bind to nothing.
    del model.model.layers[1].self_attn.v_proj
    before = snapshot(model)
    with pytest.raises(BaseModelMismatchError) as caught:
        reg.load(ref, model)
    assert "model.layers.1.self_attn.v_proj" in str(caught.value)
    assert "coverage 75%" in str(caught.value)
    assert_same_state(model, before)


def test_strict_false_loads_with_a_warning(tmp_path: Path, reg: Registry) -> None:
    ref, _made = push_with_base(reg, "lora", tmp_path)
    other = BASE_BUILDERS["llama"](7)
    before = snapshot(other)
    with pytest.warns(AdapterCompatibilityWarning, match="different weights"):
        handle = reg.load(ref, other, strict=False)
    assert not handle.report.ok
    assert not torch.equal(
        other.state_dict()["model.layers.0.self_attn.q_proj.weight"],
        before["model.layers.0.self_attn.q_proj.weight"],
    )
    handle.unload()
    assert_same_state(other, before)


@pytest.mark.parametrize("reg", ["local", "s3"], indirect=True)
def test_hot_swap_restores_bit_identical_weights(tmp_path: Path, reg: Registry) -> None:
    ref_a, made = push_with_base(reg, "lora", tmp_path, seed=0)
    made_b = make_adapter("dora", tmp_path / "b", seed=0)
    ref_b = reg.push(
        made_b.directory,
        name="t/b",
        base_path=save_base(made_b.base_factory(), tmp_path / "base-b"),
    ).version.ref
    model = made.base_factory()
    before = snapshot(model)
    with reg.load(ref_a, model) as a:
        out_a = outputs(a.model, made.inputs)
        with pytest.raises(Exception, match="already has an adapter loaded"):
            reg.load(ref_b, model)
    assert_same_state(model, before)
    with reg.load(ref_b, model) as b:
        out_b = outputs(b.model, made.inputs)
    assert not torch.equal(out_a, out_b)
    assert_same_state(model, before)


@pytest.mark.parametrize("kind", PEFT_KINDS)
def test_peft_path_for_other_methods(kind: str, tmp_path: Path, reg: Registry) -> None:
    ref, made = push_with_base(reg, kind, tmp_path)
    model = made.base_factory()
    before = snapshot(model)
    handle = reg.load(ref, model)
    assert handle.mode == "peft"
    torch.testing.assert_close(
        outputs(handle.model, made.inputs), outputs(made.peft_model, made.inputs)
    )
    restored = handle.unload()
    assert_same_state(restored, before)


def test_corrupt_blob_is_refused_on_load(tmp_path: Path, reg: Registry) -> None:
    import os

    ref, made = push_with_base(reg, "lora", tmp_path)
    entry = reg.get(ref).manifest.file("adapter_model.safetensors")
    blob = reg.blobs.path(entry.sha256)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0xFF
    blob.write_bytes(bytes(data))
    model = made.base_factory()
    before = snapshot(model)
    with pytest.raises(IntegrityError, match=r"adapter_model\.safetensors"):
        reg.load(ref, model)
    assert_same_state(model, before)
