"""Hot swaps: merged tensors reused between loads, originals restored bit for bit, and
blobs hashed once per process unless they change or a re-check is asked for."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import torch
from support.models import outputs, save_base
from support.peft_adapters import make_adapter

from registry import Registry
from registry.errors import IntegrityError
from registry.ops.updates import LowRankProduct, WeightUpdate, apply_update, apply_update_into
from registry.runtime.loader import release_buffers

Q = "model.layers.0.self_attn.q_proj.weight"


@pytest.fixture
def reg(hermetic_env: Path) -> Registry:
    return Registry.open(hermetic_env, create=True)


def _two_loras(reg: Registry, tmp_path: Path) -> tuple[str, str, object]:
    made = make_adapter("lora", tmp_path / "a", seed=0)
    other = make_adapter("lora", tmp_path / "b", seed=1)
    base_dir = save_base(made.base_factory(), tmp_path / "base")
    ref_a = reg.push(made.directory, name="swap-a", base_path=base_dir).version.ref
    ref_b = reg.push(other.directory, name="swap-b", base_path=base_dir).version.ref
    return ref_a, ref_b, made


def test_swaps_reuse_the_merged_tensors_and_restore_the_originals(
    tmp_path: Path, reg: Registry
) -> None:
    ref_a, ref_b, made = _two_loras(reg, tmp_path)
    model = made.base_factory()  # type: ignore[attr-defined]
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    original_q = model.get_parameter(Q).data_ptr()

    handle = reg.load(ref_a, model)
    first_out = outputs(model, made.inputs)  # type: ignore[attr-defined]
    merged_storage = model.get_parameter(Q).data.data_ptr()
    handle.unload()
    assert model.get_parameter(Q).data_ptr() == original_q
    handle = reg.load(ref_b, model)
    # The second adapter is written into the first one's tensor: nothing new allocated.
    assert model.get_parameter(Q).data.data_ptr() == merged_storage
    handle.unload()
    handle = reg.load(ref_a, model)
    assert torch.equal(outputs(model, made.inputs), first_out)  # type: ignore[attr-defined]
    handle.unload(keep_buffers=False)
    assert not hasattr(model, "_adapter_registry_buffers")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[name]), name
    assert model.get_parameter(Q).data_ptr() == original_q
    release_buffers(model)  # nothing left to free: a no-op


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("transpose", [False, True])
def test_writing_in_place_equals_the_allocating_path_bit_for_bit(
    dtype: torch.dtype, transpose: bool
) -> None:
    generator = torch.Generator().manual_seed(0)
    weight = torch.randn(24, 40, generator=generator).to(dtype)
    b = torch.randn(40 if transpose else 24, 4, generator=generator)
    a = torch.randn(4, 24 if transpose else 40, generator=generator)
    update = WeightUpdate("w", "add", LowRankProduct(b, a, transpose))
    expected = apply_update(weight, update)
    out = torch.empty_like(weight)
    scratch = torch.empty(weight.shape, dtype=torch.float32)
    assert apply_update_into(weight, update, out, scratch)
    assert torch.equal(out, expected)
    # Updating a tensor in place (two updates of one parameter) gives the same too.
    twice = apply_update(expected, update)
    assert apply_update_into(out, update, out, scratch)
    assert torch.equal(out, twice)


def test_other_updates_are_left_to_the_allocating_path() -> None:
    weight = torch.ones(3, 3)
    out = torch.zeros(3, 3)
    scale = WeightUpdate("w", "scale", torch.full((3, 1), 2.0))
    assert not apply_update_into(weight, scale, out)
    assert torch.equal(out, torch.zeros(3, 3))
    assert not apply_update_into(
        weight.half(), WeightUpdate("w", "add", LowRankProduct(torch.ones(3, 1), torch.ones(1, 3))),
        out.half(),
    )  # no float32 scratch given for a half-precision weight


def _tamper_keeping_stat(blob: Path) -> None:
    stat = blob.stat()
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0xFF
    with open(blob, "r+b") as handle:  # same inode, same size
        handle.write(bytes(data))
    os.utime(blob, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_a_verified_blob_is_not_hashed_again_unless_asked(tmp_path: Path, reg: Registry) -> None:
    ref_a, _ref_b, made = _two_loras(reg, tmp_path)
    model = made.base_factory()  # type: ignore[attr-defined]
    reg.load(ref_a, model).unload()
    entry = reg.get(ref_a).manifest.file("adapter_model.safetensors")
    blob = reg.blobs.path(entry.sha256)
    _tamper_keeping_stat(blob)
    # Same size, mtime and inode as when it was hashed: trusted without re-reading it...
    reg.load(ref_a, model).unload()
    # ...unless a re-check is asked for.
    with pytest.raises(IntegrityError, match=r"adapter_model\.safetensors"):
        reg.load(ref_a, model, reverify=True)


def test_a_changed_blob_is_hashed_again(tmp_path: Path, reg: Registry) -> None:
    ref_a, _ref_b, made = _two_loras(reg, tmp_path)
    model = made.base_factory()  # type: ignore[attr-defined]
    reg.load(ref_a, model).unload()
    entry = reg.get(ref_a).manifest.file("adapter_model.safetensors")
    blob = reg.blobs.path(entry.sha256)
    stat = blob.stat()
    _tamper_keeping_stat(blob)
    os.utime(blob, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    with pytest.raises(IntegrityError, match=r"adapter_model\.safetensors"):
        reg.load(ref_a, model)


def test_a_peft_wrapped_model_is_refused_saying_how_to_unwrap(
    tmp_path: Path, reg: Registry
) -> None:
    from registry.errors import ArgumentError

    ref_a, _ref_b, made = _two_loras(reg, tmp_path)
    wrapped = made.peft_model  # type: ignore[attr-defined]
    for model, what in ((wrapped, "a peft.PeftModel"), (wrapped.get_base_model(), "PEFT layers")):
        for mode in ("auto", "native", "peft"):
            with pytest.raises(ArgumentError, match=r"base = model\.unload\(\)") as caught:
                reg.load(ref_a, model, mode=mode)  # type: ignore[arg-type]
            assert what in str(caught.value) and "\n" not in str(caught.value)
    merged = copy.deepcopy(wrapped)
    merged.merge_adapter()
    with pytest.raises(ArgumentError, match=r"merged.*unmerge_adapter\(\)"):
        reg.load(ref_a, merged)
    # Following the advice gives the same outputs as PEFT on the plain base.
    expected = outputs(wrapped, made.inputs)  # type: ignore[attr-defined]
    base = wrapped.unload()
    with reg.load(ref_a, base) as handle:
        torch.testing.assert_close(outputs(handle.model, made.inputs), expected)  # type: ignore[attr-defined]
