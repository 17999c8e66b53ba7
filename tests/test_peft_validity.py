"""Config and tensor validation matches what PEFT can load, every problem reported at once:
integers where PEFT needs them, a non-empty ``target_modules``, floating-point factors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from support.handmade import write_lora
from support.lifecycle import one_line_error, run

from registry.formats import write_peft_adapter

KEY = "base_model.model.model.layers.0.self_attn.q_proj"


def lora_dir(path: Path, dtype: torch.dtype = torch.float32, **config: Any) -> Path:
    tensors = {
        f"{KEY}.lora_A.weight": torch.ones(4, 16).to(dtype),
        f"{KEY}.lora_B.weight": torch.ones(16, 4).to(dtype),
    }
    full = {
        "peft_type": "LORA",
        "base_model_name_or_path": "tiny-base",
        "r": 4,
        "lora_alpha": 8,
        "target_modules": ["q_proj"],
        **config,
    }
    write_peft_adapter(path, full, tensors)
    return path


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"r": 4.0}, "$.r: 4.0 is not of type 'integer'"),
        ({"r": True}, "$.r: True is not of type 'integer'"),
        ({"target_modules": []}, "$.target_modules: [] should be non-empty"),
        ({"target_modules": ""}, "$.target_modules: '' should be non-empty"),
    ],
    ids=["float-r", "bool-r", "empty-targets", "empty-regex"],
)
def test_configs_peft_cannot_load_are_refused(
    tmp_path: Path, config: dict[str, Any], expected: str
) -> None:
    result = run("push", str(lora_dir(tmp_path / "a", **config)))
    assert result.exit_code == 1 and one_line_error(result), result.output
    assert expected in result.stderr


def test_empty_targets_with_target_parameters_are_accepted(tmp_path: Path) -> None:
    # PEFT adapts parameters named in target_parameters without any target module.
    source = write_lora(
        tmp_path / "a", 1, extra_config={"target_modules": [], "target_parameters": ["x.weight"]}
    )
    result = run("push", str(source))
    assert result.exit_code == 0 or "target_modules" not in result.stderr, result.output


@pytest.mark.parametrize("dtype", [torch.int32, torch.int8, torch.uint8, torch.bool])
def test_integer_and_bool_factors_are_refused(tmp_path: Path, dtype: torch.dtype) -> None:
    result = run("push", str(lora_dir(tmp_path / "a", dtype)))
    assert result.exit_code == 1 and one_line_error(result), result.output
    assert "lora parameters must be floating point" in result.stderr


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_float_factors_are_accepted(tmp_path: Path, dtype: torch.dtype) -> None:
    assert run("push", str(lora_dir(tmp_path / "a", dtype))).exit_code == 0


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    source = lora_dir(tmp_path / "a", torch.int32, r=4.0, target_modules=[])
    result = run("push", str(source))
    assert result.exit_code == 1 and one_line_error(result)
    for expected in ("$.r: 4.0", "$.target_modules: []", "dtype I32"):
        assert expected in result.stderr
