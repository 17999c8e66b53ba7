"""Combining adapters: parity with PEFT's add_weighted_adapter, and what is refused.

``cat`` and ``svd`` must give the same delta (the product of the new adapter's factors)
as PEFT's ``add_weighted_adapter`` with the same combination type. PEFT keeps the first
parent's ``use_rslora`` in the combined config, which rescales its combined adapter by
sqrt(r); the factor product ``B @ A`` is what both compute, so that is what is compared.
"""

from __future__ import annotations

from pathlib import Path

import peft
import pytest
import torch
from peft.utils import merge_utils
from support.models import base_model
from support.ops_adapters import ARCH, lora_deltas, read_adapter, save_adapter

from registry.errors import ArgumentError, IncompatibleAdaptersError, UnsupportedMethodError
from registry.formats import write_peft_adapter
from registry.ops.combine import combine
from registry.ops.lowrank import truncate_dense
from registry.ops.methods import COMBINE_METHODS, CombineSpec
from registry.ops.task_merge import merge_dense
from registry.ops.tensors import AdapterTensors

RTOL = 1e-5


def _relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).norm() / theirs.norm().clamp(min=1e-12))


def _peft_products(model: peft.PeftModel, name: str) -> dict[str, torch.Tensor]:
    """Module -> B @ A of adapter ``name`` in a PeftModel (embedding: as [dim, vocab])."""
    found = {}
    for key, module in model.named_modules():
        short = key.removeprefix("base_model.model.")
        if name in getattr(module, "lora_A", {}):
            a = module.lora_A[name].weight.detach()
            b = module.lora_B[name].weight.detach()
            found[short] = b.flatten(1) @ a.flatten(1)
        elif name in getattr(module, "lora_embedding_A", {}):
            found[short] = module.lora_embedding_B[name] @ module.lora_embedding_A[name]
    return found


def _ours(directory: Path) -> dict[str, torch.Tensor]:
    adapter = read_adapter(directory)
    found = {}
    for key, tensor in adapter.tensors.items():
        for suffix in (".lora_A.weight", ".lora_embedding_A"):
            if key.endswith(suffix):
                module = key.removeprefix("base_model.model.").removesuffix(suffix)
                b = adapter.tensors[key.replace("_A", "_B")]
                found[module] = b.flatten(1) @ tensor.flatten(1)
    return found


def _combine_dirs(dirs: list[Path], spec: CombineSpec, out: Path) -> Path:
    produced = combine([read_adapter(d) for d in dirs], spec, base_model="tiny/x")
    write_peft_adapter(out, produced.config, produced.tensors)
    return out


PAIRS = [
    ("lora", "lora", (0.7, 0.4), 4),
    ("lora", "lora_r8_qkv", (1.0, -0.5), 6),  # different ranks and target modules
    ("rslora", "patterns", (0.5, 0.5), 3),  # rsLoRA, rank and alpha patterns
    ("gpt2", "gpt2_r2", (0.5, 0.8), 4),  # GPT-2 Conv1D, fan_in_fan_out
    ("embedding", "embedding", (0.5, 0.5), 4),  # embedding LoRA
]


@pytest.mark.parametrize(("first", "second", "weights", "rank"), PAIRS)
def test_cat_and_svd_match_peft_add_weighted_adapter(
    first: str, second: str, weights: tuple[float, float], rank: int, tmp_path: Path
) -> None:
    a = save_adapter(first, tmp_path / "a", 1)
    b = save_adapter(second, tmp_path / "b", 2)
    model = peft.PeftModel.from_pretrained(
        base_model(ARCH.get(first, "llama")), a, adapter_name="a"
    )
    model.load_adapter(b, adapter_name="b")
    for method, svd_rank in (("cat", None), ("svd", rank)):
        model.add_weighted_adapter(
            ["a", "b"], list(weights), method, combination_type=method, svd_rank=svd_rank
        )
        theirs = _peft_products(model, method)
        spec = CombineSpec(method, weights, svd_rank)
        ours = _ours(_combine_dirs([a, b], spec, tmp_path / method))
        assert set(ours) == set(theirs)
        for module, product in theirs.items():
            assert _relative(ours[module], product) < RTOL, (method, module)


def test_combined_adapter_loads_in_peft_and_applies_the_weighted_sum(tmp_path: Path) -> None:
    a = save_adapter("rslora", tmp_path / "a", 1)
    b = save_adapter("mlp", tmp_path / "b", 2)
    out = _combine_dirs([a, b], CombineSpec("cat", (0.25, 2.0)), tmp_path / "c")
    model = peft.PeftModel.from_pretrained(base_model(), out)  # strict loading: keys all match
    expected = {m: 0.25 * d for m, d in lora_deltas(a).items()}
    for module, delta in lora_deltas(b).items():
        expected[module] = expected.get(module, 0) + 2.0 * delta
    for key, module in model.named_modules():
        if "default" in getattr(module, "lora_A", {}):
            short = key.removeprefix("base_model.model.")
            torch.testing.assert_close(
                module.get_delta_weight("default"), expected[short], rtol=1e-5, atol=1e-7
            )


@pytest.mark.parametrize("kind", ["loha", "lokr"])
def test_lycoris_parents_become_lora_terms(kind: str, tmp_path: Path) -> None:
    from registry.ops.fold import weight_updates

    a = read_adapter(save_adapter(kind, tmp_path / "a", 1))
    b = read_adapter(save_adapter("lora", tmp_path / "b", 2))
    produced = combine([a, b], CombineSpec("cat", (0.5, 1.5)))
    dense_a = {u.target: u.dense_value() for u in weight_updates(a)}
    dense_b = {u.target: u.dense_value() for u in weight_updates(b)}
    combined = {
        u.target: u.dense_value()
        for u in weight_updates(AdapterTensors("lora", produced.config, produced.tensors))
    }
    for target, value in combined.items():
        expected = 0.5 * dense_a[target] + 1.5 * dense_b[target]
        torch.testing.assert_close(value, expected, rtol=1e-4, atol=1e-6)


def test_ia3_combines_by_weighted_sum_like_peft(tmp_path: Path) -> None:
    a = save_adapter("ia3", tmp_path / "a", 1)
    b = save_adapter("ia3_b", tmp_path / "b", 2)
    model = peft.PeftModel.from_pretrained(base_model(), a, adapter_name="a")
    model.load_adapter(b, adapter_name="b")
    model.add_weighted_adapter(["a", "b"], [0.6, 0.7], "c")
    produced = combine([read_adapter(a), read_adapter(b)], CombineSpec("linear", (0.6, 0.7)))
    out = tmp_path / "c"
    write_peft_adapter(out, produced.config, produced.tensors)
    theirs = {
        k.removeprefix("base_model.model."): m.ia3_l["c"].detach()
        for k, m in model.named_modules()
        if "c" in getattr(m, "ia3_l", {})
    }
    ours = {
        k.removeprefix("base_model.model.").removesuffix(".ia3_l"): v
        for k, v in read_adapter(out).tensors.items()
    }
    assert set(ours) == set(theirs)
    for module, vector in theirs.items():
        torch.testing.assert_close(ours[module], vector)
    assert produced.config["feedforward_modules"] == ["down_proj", "up_proj"]
    peft.PeftModel.from_pretrained(base_model(), out)


def _dense_pair() -> tuple[list[torch.Tensor], list[float]]:
    generator = torch.Generator().manual_seed(3)
    deltas = [torch.randn(12, 10, generator=generator) for _ in range(3)]
    return deltas, [0.5, 1.0, -0.3]


@pytest.mark.parametrize("method", ["linear", "ties", "magnitude_prune"])
@pytest.mark.parametrize("sign", ["total", "frequency"])
def test_dense_merging_rules_match_peft_merge_utils(method: str, sign: str) -> None:
    deltas, weights = _dense_pair()
    ours = merge_dense(method, deltas, weights, density=0.4, majority_sign=sign)
    w = torch.tensor(weights)
    if method == "linear":
        theirs = merge_utils.task_arithmetic(deltas, w)
    elif method == "ties":
        theirs = merge_utils.ties(deltas, w, 0.4, sign)
    else:
        theirs = merge_utils.magnitude_prune(deltas, w, 0.4)
    torch.testing.assert_close(ours, theirs)


@pytest.mark.parametrize("method", ["dare_linear", "dare_ties"])
def test_dare_is_seeded_and_keeps_the_expected_share(method: str, tmp_path: Path) -> None:
    deltas, weights = _dense_pair()

    def run(seed: int) -> torch.Tensor:
        gens = [torch.Generator().manual_seed(seed + i) for i in range(3)]
        return merge_dense(method, deltas, weights, density=0.3, generators=gens)

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
    pruned = merge_dense(
        "dare_linear", deltas[:1], [1.0], density=0.3, generators=[torch.Generator().manual_seed(0)]
    )
    kept = pruned != 0
    assert 0.15 < float(kept.float().mean()) < 0.45
    torch.testing.assert_close(pruned[kept], deltas[0][kept] / 0.3)
    a = read_adapter(save_adapter("lora", tmp_path / "a", 1))
    b = read_adapter(save_adapter("lora", tmp_path / "b", 2))
    spec = CombineSpec(method, (0.5, 0.5), rank=4, density=0.5, seed=7)
    first, again = combine([a, b], spec), combine([a, b], spec)
    assert all(torch.equal(first.tensors[k], again.tensors[k]) for k in first.tensors)
    assert first.parameters["seed"] == 7 and first.parameters["density"] == 0.5


def test_dense_methods_truncate_the_merged_delta(tmp_path: Path) -> None:
    a = read_adapter(save_adapter("lora", tmp_path / "a", 1))
    b = read_adapter(save_adapter("lora", tmp_path / "b", 2))
    produced = combine([a, b], CombineSpec("ties", (1.0, 1.0), rank=3, density=0.5))
    deltas_a = {m: d for m, d in lora_deltas(tmp_path / "a").items()}
    deltas_b = {m: d for m, d in lora_deltas(tmp_path / "b").items()}
    out = tmp_path / "c"
    write_peft_adapter(out, produced.config, produced.tensors)
    assert produced.config["r"] == 3 and produced.config["lora_alpha"] == 3
    for module, delta in lora_deltas(out).items():
        merged = merge_dense("ties", [deltas_a[module], deltas_b[module]], [1.0, 1.0], density=0.5)
        torch.testing.assert_close(
            delta, truncate_dense(merged, 3).low.dense(), atol=1e-5, rtol=1e-4
        )
    assert 0 < produced.parameters["retained_energy"] <= 1


def test_dora_parents_are_refused_with_the_reason(tmp_path: Path) -> None:
    a = read_adapter(save_adapter("dora", tmp_path / "a", 1))
    b = read_adapter(save_adapter("lora", tmp_path / "b", 2))
    with pytest.raises(UnsupportedMethodError, match=r"DoRA rescales .*`adapters extract`"):
        combine([a, b], CombineSpec("cat", (1.0, 1.0)), labels=["d@1", "l@1"])


def test_mixed_methods_and_layouts_are_refused(tmp_path: Path) -> None:
    lora = read_adapter(save_adapter("lora", tmp_path / "a", 1))
    ia3 = read_adapter(save_adapter("ia3", tmp_path / "b", 2))
    gpt2 = read_adapter(save_adapter("gpt2", tmp_path / "c", 3))
    with pytest.raises(UnsupportedMethodError, match="IA3, which scales weights"):
        combine([lora, ia3], CombineSpec("svd", (1.0, 1.0)))
    with pytest.raises(UnsupportedMethodError, match="use method 'linear'"):
        combine([ia3, ia3], CombineSpec("svd", (1.0, 1.0)))
    with pytest.raises(IncompatibleAdaptersError, match="fan_in_fan_out"):
        combine([lora, gpt2], CombineSpec("cat", (1.0, 1.0)))
    flipped = AdapterTensors("lora", {**gpt2.config, "fan_in_fan_out": False}, gpt2.tensors)
    with pytest.raises(IncompatibleAdaptersError, match="disagree on fan_in_fan_out"):
        combine([gpt2, flipped], CombineSpec("cat", (1.0, 1.0)))


def test_every_spec_problem_is_reported_at_once() -> None:
    spec = CombineSpec("ties", (1.0,), rank=0, density=2.0, majority_sign="most")
    with pytest.raises(ArgumentError) as caught:
        combine([], spec)
    message = str(caught.value)
    for part in ("1 weight(s) for 0", "rank must be at least 1", "density must be", "majority"):
        assert part in message
    with pytest.raises(ArgumentError, match="needs a density"):
        combine([], CombineSpec("dare_ties", ()))
    assert "cat" in COMBINE_METHODS and "magnitude_prune" in COMBINE_METHODS


def test_conflicting_full_tensors_are_refused(tmp_path: Path) -> None:
    a = read_adapter(save_adapter("embedding", tmp_path / "a", 1))
    tensors = dict(a.tensors)
    key = next(k for k in tensors if k.endswith("base_layer.weight"))
    tensors[key] = tensors[key] + 1
    other = AdapterTensors("lora", a.config, tensors)
    with pytest.raises(IncompatibleAdaptersError, match="replace the same tensors"):
        combine([a, other], CombineSpec("cat", (1.0, 1.0)))
    same = combine([a, a], CombineSpec("cat", (1.0, 1.0)))
    assert torch.equal(same.tensors[key], a.tensors[key])
