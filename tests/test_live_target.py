"""The live model's fingerprint kept between loads: reused while no tensor changed (our
own merge and unload included), recomputed after any in-place write or replacement."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support.models import save_base
from support.peft_adapters import make_adapter

from registry import Registry
from registry.errors import BaseModelMismatchError
from registry.runtime.live_target import live_target, weights_state

Q = "model.layers.0.self_attn.q_proj.weight"


@pytest.fixture
def reg(hermetic_env: Path) -> Registry:
    return Registry.open(hermetic_env, create=True)


def _pushed(reg: Registry, tmp_path: Path) -> tuple[str, object]:
    made = make_adapter("lora", tmp_path / "a", seed=0)
    base_dir = save_base(made.base_factory(), tmp_path / "base")
    return reg.push(made.directory, name="cached", base_path=base_dir).version.ref, made


def test_a_load_and_unload_leave_the_kept_fingerprint_valid(tmp_path: Path, reg: Registry) -> None:
    ref, made = _pushed(reg, tmp_path)
    model = made.base_factory()  # type: ignore[attr-defined]
    first = live_target(model)
    before = weights_state(model)
    reg.load(ref, model).unload()
    assert weights_state(model) == before  # the originals are back, untouched
    assert live_target(model) is first
    assert live_target(model, refresh=True) is not first


def test_a_weight_written_in_place_between_loads_is_checked_again(
    tmp_path: Path, reg: Registry
) -> None:
    ref, made = _pushed(reg, tmp_path)
    model = made.base_factory()  # type: ignore[attr-defined]
    reg.load(ref, model).unload()
    with torch.no_grad():
        model.get_parameter(Q).mul_(2.0)  # an edit torch counts
    with pytest.raises(BaseModelMismatchError, match="weights"):
        reg.load(ref, model)
    with torch.no_grad():
        model.get_parameter(Q).div_(2.0)  # back to the base: accepted again
    reg.load(ref, model).unload()


def test_a_replaced_tensor_is_checked_again(tmp_path: Path, reg: Registry) -> None:
    ref, made = _pushed(reg, tmp_path)
    model = made.base_factory()  # type: ignore[attr-defined]
    reg.load(ref, model).unload()
    param = model.get_parameter(Q)
    param.data = param.data * 3.0
    with pytest.raises(BaseModelMismatchError, match="weights"):
        reg.load(ref, model)


def test_a_write_through_data_is_seen_with_reverify(tmp_path: Path, reg: Registry) -> None:
    ref, made = _pushed(reg, tmp_path)
    model = made.base_factory()  # type: ignore[attr-defined]
    reg.load(ref, model).unload()
    model.get_parameter(Q).data.mul_(2.0)  # torch's version counter does not see this
    with pytest.raises(BaseModelMismatchError, match="weights"):
        reg.load(ref, model, reverify=True)


def test_a_whole_tensor_written_through_data_is_checked_again(
    tmp_path: Path, reg: Registry
) -> None:
    ref, made = _pushed(reg, tmp_path)
    model = made.base_factory()  # type: ignore[attr-defined]
    reg.load(ref, model).unload()
    param = model.get_parameter(Q)
    original = param.detach().clone()
    param.data.copy_(torch.randn_like(param))  # other weights, unseen by torch's counter
    with pytest.raises(BaseModelMismatchError, match="weights"):
        reg.load(ref, model)
    param.data.copy_(original)
    reg.load(ref, model).unload()
