"""AdapterPool: several registry versions resident on one base through the real PEFT,
compared with PEFT itself holding the same adapters."""

from __future__ import annotations

import threading
from pathlib import Path

import peft
import pytest
import torch
from support.models import base_model, make_inputs, outputs, save_base
from support.peft_adapters import lora_config, make_adapter, perturb, save_peft

from registry import Registry
from registry.errors import ArgumentError, BaseModelMismatchError
from registry.integrations.pool import BASE, AdapterPool

NAMES = ("alpha", "beta", "gamma")


def _lora(directory: Path, seed: int, **config: object) -> Path:
    model = peft.get_peft_model(base_model("llama", 0), lora_config(**config))
    perturb(model, seed)
    return save_peft(model, directory)


@pytest.fixture
def adapters(sqlite_registry: Registry, tmp_path: Path) -> dict[str, Path]:
    base_dir = save_base(base_model("llama", 0), tmp_path / "base")
    made = {}
    for seed, name in enumerate(NAMES, start=1):
        made[name] = _lora(tmp_path / name, seed)
        sqlite_registry.push(made[name], name=name, base_path=base_dir, alias="prod")
    return made


def _peft_reference(adapters: dict[str, Path], inputs: dict[str, torch.Tensor]):
    model = peft.PeftModel.from_pretrained(base_model("llama", 0), adapters["alpha"], "alpha")
    for name in NAMES[1:]:
        model.load_adapter(adapters[name], adapter_name=name)
    expected = {}
    for name in NAMES:
        model.set_adapter(name)
        expected[name] = outputs(model, inputs)
    with model.disable_adapter():
        expected[None] = outputs(model, inputs)
    return expected


def _snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    state = {f"p:{n}": t.detach().clone() for n, t in model.named_parameters()}
    state.update({f"b:{n}": t.detach().clone() for n, t in model.named_buffers()})
    return state


def test_outputs_equal_peft_per_call_and_per_batch(sqlite_registry, adapters) -> None:
    inputs = make_inputs(3)
    expected = _peft_reference(adapters, inputs)
    with AdapterPool(sqlite_registry, base_model("llama", 0), max_resident=3) as pool:
        for name in (*NAMES, "alpha", None, "gamma"):
            with pool.use(None if name is None else f"{name}@prod") as model:
                assert torch.equal(outputs(model, inputs), expected[name]), name
        rows = ["beta@prod", None]
        with pool.batch(rows) as names:
            assert names[1] == BASE
            model = pool.model
            model.eval()
            with torch.no_grad():
                mixed = model(**inputs, adapter_names=names).logits
        assert torch.allclose(mixed[0], expected["beta"][0], atol=1e-6)
        assert torch.allclose(mixed[1], expected[None][1], atol=1e-6)


def test_close_restores_every_parameter_and_buffer_bit_for_bit(sqlite_registry, adapters) -> None:
    model = base_model("llama", 0)
    before = _snapshot(model)
    kinds = [type(m) for m in model.modules()]
    pool = AdapterPool(sqlite_registry, model, max_resident=2)
    for name in NAMES:  # the third evicts the first
        with pool.use(f"{name}@prod"):
            pass
    assert [r.ref for r in pool.resident] == ["beta@1", "gamma@1"]
    assert set(pool.model.peft_config) == {r.adapter_name for r in pool.resident}
    restored = pool.close()
    assert restored is model
    after = _snapshot(restored)
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) and after[k].dtype == before[k].dtype
               for k in before)  # fmt: skip
    assert [type(m) for m in restored.modules()] == kinds


def test_a_version_for_other_weights_is_refused_before_the_model_changes(
    sqlite_registry, adapters, tmp_path
) -> None:
    other_base = save_base(base_model("llama", 9), tmp_path / "other-base")
    sqlite_registry.push(
        adapters["alpha"], name="stranger", base="tiny/llama@other", base_path=other_base
    )
    model = base_model("llama", 0)
    before = _snapshot(model)
    with AdapterPool(sqlite_registry, model) as pool:
        with pytest.raises(BaseModelMismatchError, match="weights"), pool.use("stranger"):
            pass
        assert pool.resident == []
        assert list(_snapshot(pool.model)) == list(before)


def test_batch_limits_and_methods(sqlite_registry, adapters, tmp_path) -> None:
    base_dir = save_base(base_model("llama", 0), tmp_path / "base2")
    sqlite_registry.push(_lora(tmp_path / "d", 4, use_dora=True), name="dora", base_path=base_dir)
    with AdapterPool(sqlite_registry, base_model("llama", 0), max_resident=2) as pool:
        with (
            pytest.raises(ArgumentError, match="at most 2"),
            pool.batch([f"{n}@prod" for n in NAMES]),
        ):
            pass
        with pytest.raises(ArgumentError, match="plain LoRA"), pool.batch(["dora", "alpha"]):
            pass


def test_threads_share_a_pool(sqlite_registry, adapters) -> None:
    inputs = make_inputs(3)
    expected = _peft_reference(adapters, inputs)
    failures: list[str] = []
    pool = AdapterPool(sqlite_registry, base_model("llama", 0), max_resident=2)

    def worker(index: int) -> None:
        for step in range(6):
            name = NAMES[(index + step) % 3]
            with pool.use(f"{name}@prod") as model:
                if not torch.equal(outputs(model, inputs), expected[name]):
                    failures.append(f"thread {index} step {step}: {name}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    pool.close()
    assert failures == []


def test_a_moved_alias_is_served_after_refresh(sqlite_registry, adapters, tmp_path) -> None:
    inputs = make_inputs(3)
    expected = _peft_reference(adapters, inputs)
    with AdapterPool(sqlite_registry, base_model("llama", 0), refresh_seconds=0) as pool:
        with pool.use("alpha@prod") as model:
            assert torch.equal(outputs(model, inputs), expected["alpha"])
        base_dir = save_base(base_model("llama", 0), tmp_path / "base3")
        sqlite_registry.push(adapters["beta"], name="alpha", base_path=base_dir, alias="prod")
        with pool.use("alpha@prod") as model:
            assert torch.equal(outputs(model, inputs), expected["beta"])


def test_prompt_tuning_in_a_pool_and_restore(sqlite_registry, tmp_path) -> None:
    made = make_adapter("prompt_tuning", tmp_path / "pt", seed=0)
    base_dir = save_base(made.base_factory(), tmp_path / "pt-base")
    sqlite_registry.push(made.directory, name="pt", base="tiny/pt-base", base_path=base_dir)
    model = made.base_factory()
    before = _snapshot(model)
    with AdapterPool(sqlite_registry, model) as pool, pool.use("pt") as served:
        assert torch.equal(outputs(served, made.inputs), outputs(made.peft_model, made.inputs))
    after = _snapshot(pool.close())
    assert list(after) == list(before) and all(torch.equal(after[k], before[k]) for k in before)
