"""Resize (exact SVD truncation of each module's delta) and extract (LoRA from a fully
fine-tuned model)."""

from __future__ import annotations

from pathlib import Path

import peft
import pytest
import torch
from support.models import base_model, make_inputs, outputs, save_base
from support.ops_adapters import lora_deltas, read_adapter, save_adapter

from registry.errors import UnsupportedMethodError, ValidationError
from registry.formats import write_peft_adapter
from registry.ops.extract import ExtractSpec, extract
from registry.ops.fold import weight_updates
from registry.ops.lowrank import randomized_truncate, truncate_dense
from registry.ops.resize import resize
from registry.ops.tensors import AdapterTensors


def _write(produced: object, directory: Path) -> Path:
    write_peft_adapter(directory, produced.config, produced.tensors)  # type: ignore[attr-defined]
    return directory


def test_resize_is_the_truncated_svd_of_each_delta(tmp_path: Path) -> None:
    source = save_adapter("patterns", tmp_path / "a", 1)  # ranks 8, 4 and 2 by module
    produced = resize(read_adapter(source), 3, base_model="tiny/llama")
    out = _write(produced, tmp_path / "r3")
    before, after = lora_deltas(source), lora_deltas(out)
    assert set(before) == set(after)
    energies = []
    for module, delta in before.items():
        best = truncate_dense(delta, 3)
        torch.testing.assert_close(after[module], best.low.dense(), rtol=1e-4, atol=1e-6)
        energies.append(best.retained)
    # Modules already at rank 2 keep it, through rank_pattern; alpha follows so scaling is 1.
    assert produced.config["r"] == 3
    assert set(produced.config["rank_pattern"].values()) == {2}
    assert produced.config["alpha_pattern"] == produced.config["rank_pattern"]
    assert produced.parameters["retained_energy_min"] == pytest.approx(min(energies), abs=1e-5)
    peft.PeftModel.from_pretrained(base_model(), out)


def test_resize_keeps_dora_magnitudes_and_turns_lycoris_into_lora(tmp_path: Path) -> None:
    dora = read_adapter(save_adapter("dora", tmp_path / "d", 1))
    same = resize(dora, 4)  # full rank: the fold must be unchanged
    assert same.config["use_dora"] is True
    original = {u.target: u for u in weight_updates(dora)}
    for update in weight_updates(AdapterTensors("lora", same.config, same.tensors)):
        assert update.kind == "dora"
        torch.testing.assert_close(
            update.dense_value(), original[update.target].dense_value(), atol=1e-6, rtol=1e-4
        )
        assert update.magnitude is not None
        assert torch.equal(update.magnitude, original[update.target].magnitude)
    loha = read_adapter(save_adapter("loha", tmp_path / "h", 1))
    as_lora = resize(loha, 16)  # LoHa r=4 deltas have rank up to 16: exact at 16
    assert as_lora.method == "lora" and as_lora.parameters["source_method"] == "loha"
    expected = {u.target: u.dense_value() for u in weight_updates(loha)}
    for update in weight_updates(AdapterTensors("lora", as_lora.config, as_lora.tensors)):
        torch.testing.assert_close(
            update.dense_value(), expected[update.target], atol=1e-6, rtol=1e-4
        )
    with pytest.raises(UnsupportedMethodError, match="no additive low-rank delta"):
        resize(read_adapter(save_adapter("ia3", tmp_path / "i", 1)), 2)


def test_randomized_truncation_finds_the_dominant_subspace() -> None:
    generator = torch.Generator().manual_seed(0)
    signal = torch.randn(300, 5, generator=generator) @ torch.randn(5, 200, generator=generator)
    noisy = signal + 1e-3 * torch.randn(300, 200, generator=generator)
    found = randomized_truncate(noisy, 5, seed=1)
    exact = truncate_dense(noisy, 5)
    assert found.low.rank == 5
    error = float((noisy - found.low.dense()).norm())
    assert error <= float((noisy - exact.low.dense()).norm()) * 1.01
    assert found.retained == pytest.approx(exact.retained, abs=1e-6)
    again = randomized_truncate(noisy, 5, seed=1)
    assert torch.equal(found.low.a, again.low.a)


def _tuned_copy(model: torch.nn.Module, names: list[str], rank: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name in names:
            weight = params[name]
            b = torch.randn(weight.shape[0], rank, generator=generator) * 0.1
            a = torch.randn(rank, weight.shape[1], generator=generator) * 0.1
            weight.add_(b @ a)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_extract_recovers_a_low_rank_fine_tune(arch: str, tmp_path: Path) -> None:
    base = base_model(arch)
    base_dir = save_base(base, tmp_path / "base")
    tuned = base_model(arch)
    if arch == "llama":
        changed = [
            f"model.layers.{i}.{m}.weight"
            for i in range(2)
            for m in ("self_attn.q_proj", "self_attn.v_proj", "mlp.up_proj")
        ]
        norm = "model.norm.weight"
    else:
        changed = [f"transformer.h.{i}.attn.c_attn.weight" for i in range(2)]
        norm = "transformer.ln_f.weight"
    _tuned_copy(tuned, changed, rank=2, seed=3)
    with torch.no_grad():
        dict(tuned.named_parameters())[norm].add_(0.01)
    tuned_dir = save_base(tuned, tmp_path / "tuned")
    produced = extract(base_dir, tuned_dir, ExtractSpec(rank=2), base_model=f"tiny/{arch}")
    assert produced.parameters["retained_energy_min"] > 0.99999
    assert produced.parameters["not_captured"] == [norm]
    assert any(norm in note for note in produced.notes)
    assert produced.config["fan_in_fan_out"] is (arch == "gpt2")
    assert produced.config["task_type"] == "CAUSAL_LM"
    out = _write(produced, tmp_path / "extracted")
    model = peft.PeftModel.from_pretrained(base_model(arch), out)
    inputs = make_inputs(0)
    # The norm change is not in the adapter: compare with a tuned model without it.
    with torch.no_grad():
        dict(tuned.named_parameters())[norm].sub_(0.01)
    torch.testing.assert_close(outputs(model, inputs), outputs(tuned, inputs), rtol=1e-4, atol=1e-4)


def test_extract_selects_targets_and_reports_nothing_to_do(tmp_path: Path) -> None:
    base_dir = save_base(base_model(), tmp_path / "base")
    tuned = base_model()
    names = [f"model.layers.{i}.self_attn.{m}_proj.weight" for i in range(2) for m in "qk"]
    _tuned_copy(tuned, names, rank=1, seed=4)
    tuned_dir = save_base(tuned, tmp_path / "tuned")
    only_q = extract(base_dir, tuned_dir, ExtractSpec(rank=1, targets=("q_proj",)))
    assert only_q.config["target_modules"] == ["q_proj"]
    assert only_q.parameters["not_captured_count"] == 2  # the k_proj weights
    one_layer = extract(
        base_dir, tuned_dir, ExtractSpec(rank=1, targets=("model.layers.0.self_attn.q_proj",))
    )
    assert one_layer.config["target_modules"] == ["model.layers.0.self_attn.q_proj"]
    with pytest.raises(ValidationError, match="nothing to extract"):
        extract(base_dir, base_dir, ExtractSpec(rank=2))
