"""Property: every natively folded method, on every architecture, gives PEFT's output, and
unload gives back the base bit for bit, in both modes.

For each (architecture, method) peft can build: the adapter is made with the real peft,
pushed against the saved base, loaded natively (outputs equal to PEFT's forward within float
tolerance), unloaded (every parameter and buffer equal bit for bit, ``modules_to_save`` heads
included, the module tree unchanged), loaded with ``mode="peft"`` (outputs equal to PEFT's
exactly) and unloaded again (the same). One architecture per method and one method per
architecture run by default; the rest are marked ``slow``.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import peft
import pytest
import torch
from support.arch_models import ARCHS, named
from support.models import save_base
from support.peft_adapters import perturb, save_peft

from registry import Registry

METHODS: dict[str, type[peft.PeftConfig]] = {
    "lora": peft.LoraConfig,
    "ia3": peft.IA3Config,
    "loha": peft.LoHaConfig,
    "lokr": peft.LoKrConfig,
    "oft": peft.OFTConfig,
    "boft": peft.BOFTConfig,
}
SIZES: dict[str, dict[str, Any]] = {
    "lora": {"r": 4, "lora_alpha": 8},
    "ia3": {},
    "loha": {"r": 4, "alpha": 8},
    "lokr": {"r": 4, "alpha": 8},
    "oft": {"r": 0, "oft_block_size": 8},
    "boft": {"boft_block_size": 4},
}
# What peft 0.21.2 itself cannot build on these bases.
CANNOT_BUILD: dict[tuple[str, str], str] = {
    ("gpt2", "loha"): "LoHa takes Linear, Conv1d and Conv2d layers, not GPT-2's Conv1D",
    ("gpt2", "lokr"): "LoKr takes Linear, Conv1d and Conv2d layers, not GPT-2's Conv1D",
    ("gpt2", "oft"): "OFT takes Linear, Conv2d and Embedding layers, not GPT-2's Conv1D",
    ("gpt2", "boft"): "BOFT takes Linear and Conv2d layers, not GPT-2's Conv1D",
}
QUICK = {
    ("llama", "lora"),
    ("gpt2", "lora"),
    ("bert", "ia3"),
    ("roberta", "loha"),
    ("t5", "lokr"),
    ("vit", "oft"),
    ("mixtral", "boft"),
}


def _config(arch: str, method: str) -> peft.PeftConfig:
    spec = ARCHS[arch]
    cls = METHODS[method]
    fields = {f.name for f in dataclasses.fields(cls)}
    settings: dict[str, Any] = {"target_modules": spec.attention, **SIZES[method]}
    if method == "ia3":
        settings["target_modules"] = [*spec.attention, spec.feedforward]
        settings["feedforward_modules"] = [spec.feedforward]
    settings.update({k: v for k, v in spec.settings.items() if k in fields})
    return cls(**settings)


def _cases() -> list[Any]:
    cases = []
    for arch in ARCHS:
        for method in METHODS:
            if (arch, method) in CANNOT_BUILD:
                continue
            marks = () if (arch, method) in QUICK else (pytest.mark.slow,)
            cases.append(pytest.param(arch, method, marks=marks, id=f"{arch}-{method}"))
    return cases


def _outputs(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**inputs).logits  # type: ignore[no-any-return]


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    found = {f"p:{k}": v.detach().clone() for k, v in model.named_parameters()}
    found.update({f"b:{k}": v.detach().clone() for k, v in model.named_buffers()})
    return found


def _same(model: torch.nn.Module, before: dict[str, torch.Tensor], modules: list[str]) -> None:
    assert [name for name, _ in model.named_modules()] == modules
    after = _state(model)
    assert after.keys() == before.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed, changed


@pytest.mark.parametrize(("arch", "method"), _cases())
def test_native_equals_peft_and_unload_is_exact(
    arch: str, method: str, tmp_path: Path, sqlite_registry: Registry
) -> None:
    inputs = ARCHS[arch].inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = peft.get_peft_model(named(arch), _config(arch, method))
    perturb(made, 7)
    directory = save_peft(made.eval(), tmp_path / "adapter")
    sqlite_registry.push(directory, name="a", base_path=save_base(named(arch), tmp_path / "b"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = _outputs(peft.PeftModel.from_pretrained(named(arch), str(directory)), inputs)
    base = named(arch)
    plain = _outputs(base, inputs)
    before, modules = _state(base), [name for name, _ in base.named_modules()]

    with sqlite_registry.load("a", base, mode="native") as loaded:
        got = _outputs(loaded.model, inputs)
    assert not torch.equal(got, plain)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    _same(base, before, modules)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = sqlite_registry.load("a", base, mode="peft")
    with loaded:
        assert torch.equal(_outputs(loaded.model, inputs), expected)
    _same(loaded.base, before, modules)
