"""Properties of the operators, over random adapters (hypothesis).

- cat is exact: its delta is the weighted sum of the parents' deltas;
- svd at full rank equals cat; below it, it is as good as a dense truncated SVD;
- a parent with weight zero changes nothing;
- merging then unmerging restores the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.ops.combine import combine
from registry.ops.fold import weight_updates
from registry.ops.lowrank import LowRank, stack, truncate, truncate_dense
from registry.ops.methods import CombineSpec
from registry.ops.tensors import AdapterTensors
from registry.ops.updates import WeightUpdate, apply_update, revert_update

SETTINGS = settings(max_examples=40, deadline=None)
MODULES = ("layers.0.q", "layers.0.v", "layers.1.q")
SHAPES = {"layers.0.q": (7, 5), "layers.0.v": (4, 5), "layers.1.q": (7, 5)}


@dataclass(frozen=True)
class Recipe:
    seed: int
    rank: int
    alpha: float
    rslora: bool
    modules: tuple[str, ...]


recipes = st.builds(
    Recipe,
    seed=st.integers(0, 2**16),
    rank=st.integers(1, 4),
    alpha=st.sampled_from([1.0, 4.0, 16.0]),
    rslora=st.booleans(),
    modules=st.lists(st.sampled_from(MODULES), min_size=1, max_size=3, unique=True).map(tuple),
)
weights = st.floats(-2, 2, allow_nan=False).filter(lambda w: abs(w) > 1e-3)


def build(recipe: Recipe) -> AdapterTensors:
    generator = torch.Generator().manual_seed(recipe.seed)
    tensors = {}
    for module in recipe.modules:
        out_f, in_f = SHAPES[module]
        key = f"base_model.model.{module}"
        tensors[f"{key}.lora_A.weight"] = torch.randn(recipe.rank, in_f, generator=generator)
        tensors[f"{key}.lora_B.weight"] = torch.randn(out_f, recipe.rank, generator=generator)
    config = {
        "peft_type": "LORA",
        "r": recipe.rank,
        "lora_alpha": recipe.alpha,
        "use_rslora": recipe.rslora,
        "target_modules": sorted({m.rsplit(".", 1)[1] for m in recipe.modules}),
    }
    return AdapterTensors("lora", config, tensors)


def deltas(adapter: AdapterTensors) -> dict[str, torch.Tensor]:
    return {u.target: u.dense_value() for u in weight_updates(adapter)}


def as_adapter(produced: object) -> AdapterTensors:
    return AdapterTensors("lora", produced.config, produced.tensors)  # type: ignore[attr-defined]


def weighted_sum(parents: list[AdapterTensors], ws: list[float]) -> dict[str, torch.Tensor]:
    total: dict[str, torch.Tensor] = {}
    for parent, w in zip(parents, ws, strict=True):
        for target, delta in deltas(parent).items():
            total[target] = total.get(target, torch.zeros_like(delta)) + w * delta
    return total


def assert_same(ours: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert set(ours) == set(expected)
    for target, value in expected.items():
        scale = float(value.abs().max()) + 1e-6
        torch.testing.assert_close(ours[target], value, rtol=1e-4, atol=1e-5 * scale)


@SETTINGS
@given(st.lists(st.tuples(recipes, weights), min_size=1, max_size=3))
def test_cat_is_exact(items: list[tuple[Recipe, float]]) -> None:
    parents = [build(r) for r, _ in items]
    ws = [w for _, w in items]
    produced = combine(parents, CombineSpec("cat", tuple(ws)))
    assert_same(deltas(as_adapter(produced)), weighted_sum(parents, ws))


@SETTINGS
@given(st.lists(st.tuples(recipes, weights), min_size=1, max_size=3))
def test_svd_at_full_rank_equals_cat(items: list[tuple[Recipe, float]]) -> None:
    parents = [build(r) for r, _ in items]
    ws = tuple(w for _, w in items)
    full = sum(r.rank for r, _ in items)
    svd = combine(parents, CombineSpec("svd", ws, rank=full))
    cat = combine(parents, CombineSpec("cat", ws))
    assert_same(deltas(as_adapter(svd)), deltas(as_adapter(cat)))
    assert svd.parameters["retained_energy"] == 1.0


@SETTINGS
@given(recipes, recipes, weights, st.sampled_from(["cat", "svd", "linear"]))
def test_zero_weight_is_identity(first: Recipe, second: Recipe, w: float, method: str) -> None:
    a, b = build(first), build(second)
    rank = None if method == "cat" else first.rank
    produced = combine([a, b], CombineSpec(method, (w, 0.0), rank=rank))
    ours = deltas(as_adapter(produced))
    expected = {t: w * d for t, d in deltas(a).items()}
    # Modules only the zero-weight parent adapts are present, with a zero delta.
    for target in set(ours) - set(expected):
        assert float(ours[target].abs().max()) == 0.0
        expected[target] = ours[target]
    assert_same(ours, expected)


@SETTINGS
@given(
    st.integers(0, 2**16),
    st.integers(3, 12),
    st.integers(3, 12),
    st.lists(st.integers(1, 4), min_size=1, max_size=3),
    st.integers(1, 6),
)
def test_factored_truncation_is_as_good_as_dense_svd(
    seed: int, m: int, n: int, ranks: list[int], keep: int
) -> None:
    generator = torch.Generator().manual_seed(seed)
    terms = [
        (
            1.0,
            LowRank(torch.randn(m, r, generator=generator), torch.randn(r, n, generator=generator)),
        )
        for r in ranks
    ]
    low = stack(terms)
    dense = low.dense()
    ours = truncate(low, keep)
    reference = truncate_dense(dense, keep)
    error = float((dense - ours.low.dense()).norm())
    best = float((dense - reference.low.dense()).norm())
    assert error <= best * (1 + 1e-4) + 1e-4 * float(dense.norm())
    assert abs(ours.retained - reference.retained) < 1e-5
    assert ours.low.rank == min(keep, sum(ranks), m, n)


@SETTINGS
@given(
    st.integers(0, 2**16),
    st.integers(1, 9),
    st.integers(1, 9),
    st.sampled_from(["add", "scale_rows", "scale_columns"]),
    st.sampled_from([torch.float32, torch.float64]),
)
def test_merge_then_unmerge_restores_weights(
    seed: int, out_f: int, in_f: int, kind: str, dtype: torch.dtype
) -> None:
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(out_f, in_f, generator=generator).to(dtype)
    if kind == "add":
        update = WeightUpdate("w", "add", torch.randn(out_f, in_f, generator=generator))
    else:
        shape = (out_f, 1) if kind == "scale_rows" else (1, in_f)
        # IA3 vectors sit near 1 after training; keep them away from 0 so division is stable.
        factor = 0.5 + torch.rand(shape, generator=generator)
        update = WeightUpdate("w", "scale", factor)
    merged = apply_update(weight, update)
    restored = revert_update(merged, update)
    torch.testing.assert_close(restored, weight, rtol=1e-5, atol=1e-5)
    assert restored.dtype == dtype


@SETTINGS
@given(recipes, st.integers(0, 2**16))
def test_adapter_merge_then_unmerge_restores_the_base(recipe: Recipe, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    base = {f"{m}.weight": torch.randn(*SHAPES[m], generator=generator) for m in MODULES}
    updates = weight_updates(build(recipe))
    merged = dict(base)
    for update in updates:
        merged[update.target] = apply_update(merged[update.target], update)
    assert any(not torch.equal(merged[k], base[k]) for k in base)
    for update in reversed(updates):
        merged[update.target] = revert_update(merged[update.target], update)
    for name, weight in base.items():
        torch.testing.assert_close(merged[name], weight, rtol=1e-5, atol=1e-4)
