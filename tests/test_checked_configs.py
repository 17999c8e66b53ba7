"""Configs already checked are kept by their bytes (registry/formats/checked_configs.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.handmade import write_adapter

from registry.errors import ValidationError
from registry.formats import checked_configs
from registry.formats.reader import read_adapter_dir


def test_a_config_read_again_gives_the_same_answer_and_a_copy_of_its_own(tmp_path: Path) -> None:
    first = read_adapter_dir(write_adapter(tmp_path / "a", seed=1))
    raw = (tmp_path / "a" / "adapter_config.json").read_bytes()
    assert checked_configs.known_config(raw) is not None
    first.config["r"] = 99  # a caller's copy: changing it changes nothing kept
    second = read_adapter_dir(write_adapter(tmp_path / "b", seed=2))
    assert second.config["r"] != 99
    fresh = read_adapter_dir(write_adapter(tmp_path / "c", seed=2))
    assert (second.config, second.config_bytes, second.method, second.analysis) == (
        fresh.config, fresh.config_bytes, fresh.method, fresh.analysis,
    )  # fmt: skip


def test_a_config_with_a_problem_is_not_kept(tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "a", seed=1)
    path = directory / "adapter_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "r": -4}))
    for _ in range(2):  # refused the same way each time, never answered from memory
        with pytest.raises(ValidationError, match="r"):
            read_adapter_dir(directory)
    assert checked_configs.known_config(path.read_bytes()) is None


def test_a_good_config_beside_bad_weights_is_not_kept(tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "a", seed=3)
    weights = directory / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])  # the data section cut short
    raw = (directory / "adapter_config.json").read_bytes()
    checked_configs._kept.pop(raw)
    with pytest.raises(ValidationError):
        read_adapter_dir(directory)
    assert checked_configs.known_config(raw) is None
