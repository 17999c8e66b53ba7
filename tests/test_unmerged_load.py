"""``Registry.load(ref, model, merge=False)``: LoRA added at forward time by hooks, with
outputs equal to PEFT's ``PeftModel`` bit for bit, the base untouched, and nothing left
behind by ``unload()``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import peft
import pytest
import torch
from support.models import BASE_BUILDERS, make_inputs, outputs, save_base
from support.peft_adapters import lora_config, make_adapter, perturb, save_peft

from registry import Registry
from registry.errors import ArgumentError, BaseModelMismatchError, UnsupportedMethodError


@pytest.fixture
def reg(hermetic_env: Path) -> Registry:
    return Registry.open(hermetic_env, create=True)


@dataclass
class Made:
    directory: Path
    arch: str
    ref: str

    def base(self, seed: int = 0) -> Any:
        return BASE_BUILDERS[self.arch](seed)

    def peft_model(self, *, train: bool = False) -> peft.PeftModel:
        wrapped = peft.PeftModel.from_pretrained(self.base(), str(self.directory))
        wrapped.train(train)
        return wrapped


CONFIGS: dict[str, tuple[str, Any]] = {
    "llama": ("llama", lambda: lora_config()),
    "rslora": ("llama", lambda: lora_config(use_rslora=True)),
    "lora_bias": ("llama", lambda: lora_config(lora_bias=True)),
    "patterns": (
        "llama",
        lambda: lora_config(
            target_modules=["q_proj", "v_proj", "up_proj", "lm_head"],
            rank_pattern={"v_proj": 2, "layers.0.self_attn.q_proj": 8},
            alpha_pattern={"up_proj": 16},
        ),
    ),
    "gpt2": ("gpt2", lambda: lora_config(target_modules=["c_attn", "c_proj"], fan_in_fan_out=True)),
    "bert": ("bert", lambda: lora_config(task_type=None, target_modules=["query", "value"])),
    "dropout": ("llama", lambda: lora_config(lora_dropout=0.3)),
    "trainable_tokens": ("llama", lambda: lora_config(trainable_token_indices=[1, 2])),
}


def _made(reg: Registry, tmp_path: Path, kind: str, seed: int = 0) -> Made:
    arch, config = CONFIGS[kind]
    torch.manual_seed(seed)
    model = peft.get_peft_model(BASE_BUILDERS[arch](0), config())
    perturb(model, seed + 1)
    directory = save_peft(model, tmp_path / f"{kind}-{seed}")
    base_dir = tmp_path / f"base-{arch}"
    if not base_dir.exists():
        save_base(BASE_BUILDERS[arch](0), base_dir)
    pushed = reg.push(directory, name=f"{kind.replace('_', '-')}-{seed}", base_path=base_dir)
    return Made(directory, arch, pushed.version.ref)


def _hooks(model: torch.nn.Module) -> dict[str, tuple[Any, ...]]:
    return {
        name: (
            type(m),
            dict(m._forward_hooks),
            dict(m._forward_hooks_with_kwargs),
            dict(m._forward_pre_hooks),
            dict(m._backward_hooks),
        )
        for name, m in model.named_modules()
    }


def _state(model: torch.nn.Module) -> dict[str, tuple[int, torch.Tensor]]:
    found = {n: (t.data_ptr(), t.detach().clone()) for n, t in model.named_buffers()}
    found.update({n: (t.data_ptr(), t.detach().clone()) for n, t in model.named_parameters()})
    return found


def _same_state(model: torch.nn.Module, before: dict[str, tuple[int, torch.Tensor]]) -> None:
    after = _state(model)
    assert after.keys() == before.keys()
    for name, (pointer, value) in before.items():
        assert after[name][0] == pointer, name
        assert torch.equal(after[name][1], value), name


@pytest.mark.parametrize("kind", ["llama", "rslora", "lora_bias", "patterns", "gpt2", "bert"])
def test_outputs_equal_peft_and_unload_restores_everything(
    tmp_path: Path, reg: Registry, kind: str
) -> None:
    made = _made(reg, tmp_path, kind)
    inputs = make_inputs(0)
    model = made.base()
    hooks, state = _hooks(model), _state(model)
    handle = reg.load(made.ref, model, merge=False)
    assert handle.mode == "native" and not handle.merged
    _same_state(model, state)  # no base weight touched
    assert torch.equal(outputs(model, inputs), outputs(made.peft_model(), inputs))
    handle.unload()
    assert _hooks(model) == hooks
    _same_state(model, state)
    assert not hasattr(model, "_adapter_registry_loaded")
    assert torch.equal(outputs(model, inputs), outputs(made.base(), inputs))


def test_a_swap_reuses_the_hooks_and_gives_each_version_exactly(
    tmp_path: Path, reg: Registry
) -> None:
    a, b = _made(reg, tmp_path, "llama", 0), _made(reg, tmp_path, "llama", 1)
    inputs = make_inputs(0)
    expected = {m.ref: outputs(m.peft_model(), inputs) for m in (a, b)}
    assert not torch.equal(expected[a.ref], expected[b.ref])
    model = a.base()
    hooks = _hooks(model)
    handle = reg.load(a.ref, model, merge=False)
    kept = dict(model._adapter_registry_branches["hooks"])  # type: ignore[operator]
    for made in (a, b, a):
        handle.unload()
        handle = reg.load(made.ref, model, merge=False)
        assert torch.equal(outputs(model, inputs), expected[made.ref])
    assert model._adapter_registry_branches["hooks"] == kept  # type: ignore[operator]
    handle.unload(keep_buffers=False)
    assert _hooks(model) == hooks
    assert not hasattr(model, "_adapter_registry_branches")


def test_training_mode_applies_dropout_as_peft_does(tmp_path: Path, reg: Registry) -> None:
    made = _made(reg, tmp_path, "dropout")
    inputs = make_inputs(0)
    model = made.base()
    with reg.load(made.ref, model, merge=False):
        model.train()
        torch.manual_seed(7)
        ours = model(**inputs).logits
        theirs_model = made.peft_model(train=True)
        torch.manual_seed(7)
        theirs = theirs_model(**inputs).logits
        assert torch.equal(ours, theirs)
        model.eval()
        with torch.no_grad():
            assert not torch.equal(model(**inputs).logits, ours)  # dropout did run
        assert torch.equal(outputs(model, inputs), outputs(made.peft_model(), inputs))


def test_a_mismatched_base_is_refused_as_the_merged_path_refuses(
    tmp_path: Path, reg: Registry
) -> None:
    made = _made(reg, tmp_path, "llama")
    other = made.base(seed=5)
    hooks, state = _hooks(other), _state(other)
    with pytest.raises(BaseModelMismatchError) as merged:
        reg.load(made.ref, other)
    with pytest.raises(BaseModelMismatchError) as unmerged:
        reg.load(made.ref, other, merge=False)
    assert str(unmerged.value) == str(merged.value)
    assert _hooks(other) == hooks
    _same_state(other, state)


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("dora", "DoRA"),
        ("lora_embedding", "embedding layer"),
        ("ia3", "ia3 adapter"),
        ("prefix_tuning", "prefix_tuning adapter"),
        ("lora_bert", "modules_to_save"),
    ],
)
def test_what_hooks_cannot_reproduce_is_refused(
    tmp_path: Path, reg: Registry, kind: str, reason: str
) -> None:
    made = make_adapter(kind, tmp_path / kind)
    base_dir = save_base(made.base_factory(), tmp_path / "base")
    ref = reg.push(made.directory, name=kind.replace("_", "-"), base_path=base_dir).version.ref
    model = made.base_factory()
    hooks, state = _hooks(model), _state(model)
    with pytest.raises(UnsupportedMethodError, match=reason) as refused:
        reg.load(ref, model, merge=False)
    assert "merge=True or mode='peft'" in str(refused.value)
    assert "\n" not in str(refused.value)
    assert _hooks(model) == hooks
    _same_state(model, state)
    reg.load(ref, model, mode="peft").unload()  # the fix it names works


def test_trainable_tokens_are_refused(tmp_path: Path, reg: Registry) -> None:
    made = _made(reg, tmp_path, "trainable_tokens")
    with pytest.raises(UnsupportedMethodError, match="trainable tokens"):
        reg.load(made.ref, made.base(), merge=False)


def test_merge_false_with_peft_mode_is_an_argument_error(tmp_path: Path, reg: Registry) -> None:
    made = _made(reg, tmp_path, "llama")
    with pytest.raises(ArgumentError, match="unmerged already"):
        reg.load(made.ref, made.base(), mode="peft", merge=False)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_bases_match_peft_with_float32_factors(
    tmp_path: Path, reg: Registry, dtype: torch.dtype
) -> None:
    made = _made(reg, tmp_path, "llama")
    inputs = make_inputs(0)
    model = made.base().to(dtype)
    theirs = peft.PeftModel.from_pretrained(made.base().to(dtype), str(made.directory))
    with reg.load(made.ref, model, merge=False, strict=False):  # a cast of the recorded base
        assert torch.equal(outputs(model, inputs), outputs(theirs, inputs))


def test_lora_on_a_convolution_is_refused(tmp_path: Path, reg: Registry) -> None:
    from safetensors.torch import save_file
    from support.models import tiny_conv
    from support.ops_adapters import conv_adapter, state_of

    conv_adapter(tmp_path / "a", seed=1)
    base_dir = tmp_path / "base"
    base_dir.mkdir()
    save_file(dict(state_of(tiny_conv())), str(base_dir / "model.safetensors"))
    ref = reg.push(tmp_path / "a", name="conv", base_path=base_dir).version.ref
    with pytest.raises(UnsupportedMethodError, match="Conv2d; unmerged load covers Linear"):
        reg.load(ref, tiny_conv(), merge=False)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_cast_after_the_load_casts_the_factors_as_peft_does(
    tmp_path: Path, reg: Registry, dtype: torch.dtype
) -> None:
    made = _made(reg, tmp_path, "llama")
    inputs = make_inputs(0)
    model = made.base()
    with reg.load(made.ref, model, merge=False):
        model.to(dtype)  # PEFT's lora_A/lora_B are cast with the model
        assert torch.equal(outputs(model, inputs), outputs(made.peft_model().to(dtype), inputs))
        model.float()  # and back, with the rounding PEFT's factors kept
        theirs = made.peft_model().to(dtype).float()
        assert torch.equal(outputs(model, inputs), outputs(theirs, inputs))


def test_gradients_reach_the_input_as_through_peft(tmp_path: Path, reg: Registry) -> None:
    made = _made(reg, tmp_path, "llama")
    ids = make_inputs(0)["input_ids"]
    model, theirs = made.base(), made.peft_model()
    grads = []
    with reg.load(made.ref, model, merge=False):
        for m in (model, theirs):
            embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
            m(inputs_embeds=embeds).logits.square().sum().backward()
            grads.append(embeds.grad)
    assert grads[0] is not None and torch.equal(grads[0], grads[1])


def test_a_module_under_two_names_is_refused(tmp_path: Path, reg: Registry) -> None:
    made = _made(reg, tmp_path, "llama")
    model = made.base()
    layer = model.model.layers[0].self_attn
    layer.add_module("q_alias", layer.q_proj)  # one object, two names
    hooks, state = _hooks(model), _state(model)
    with pytest.raises(UnsupportedMethodError, match="same module object as"):
        reg.load(made.ref, model, merge=False, strict=False)
    assert _hooks(model) == hooks
    _same_state(model, state)


def test_hooks_of_the_user_run_and_survive_the_unload(tmp_path: Path, reg: Registry) -> None:
    made = _made(reg, tmp_path, "llama")
    inputs = make_inputs(0)
    model = made.base()
    seen: list[torch.Tensor] = []
    q_proj = model.model.layers[0].self_attn.q_proj
    q_proj.register_forward_hook(lambda _m, _a, out: seen.append(out))
    handle = reg.load(made.ref, model, merge=False)
    assert torch.equal(outputs(model, inputs), outputs(made.peft_model(), inputs))
    handle.unload()
    assert len(seen) == 1 and len(q_proj._forward_hooks) == 1
