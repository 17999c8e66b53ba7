"""Safetensors headers already checked are kept by their bytes and the file's size
(registry/formats/checked_headers.py); the data is checked in every file."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from support.handmade import write_adapter

from registry.errors import ValidationError
from registry.formats import checked_headers
from registry.formats.reader import read_adapter_dir
from registry.formats.safetensors_header import inspect_safetensors_header

WEIGHTS = "adapter_model.safetensors"


def _header(path: Path) -> bytes:
    data = path.read_bytes()
    (length,) = struct.unpack("<Q", data[:8])
    return data[8 : 8 + length]


def test_a_header_read_again_gives_the_same_answer_and_dicts_of_its_own(tmp_path: Path) -> None:
    first = write_adapter(tmp_path / "a", seed=1) / WEIGHTS
    second = write_adapter(tmp_path / "b", seed=2) / WEIGHTS
    assert _header(first) == _header(second)  # one recipe: one header, other data
    read = inspect_safetensors_header(first)
    assert checked_headers.known_header(_header(first), first.stat().st_size) is not None
    read.tensors.clear()
    read.metadata["x"] = "y"  # the caller's own: nothing kept changes
    again = inspect_safetensors_header(second)
    checked_headers._kept.clear()
    fresh = inspect_safetensors_header(second)
    assert again.tensors == fresh.tensors and list(again.tensors) == list(fresh.tensors)
    assert (again.metadata, again.data_start, again.problems) == (
        fresh.metadata, fresh.data_start, []
    )  # fmt: skip


def test_the_same_header_in_a_file_of_another_size_is_checked_again(tmp_path: Path) -> None:
    good = write_adapter(tmp_path / "a", seed=1) / WEIGHTS
    assert not inspect_safetensors_header(good).problems
    longer = write_adapter(tmp_path / "b", seed=1) / WEIGHTS
    with longer.open("ab") as handle:
        handle.write(b"\0" * 4)  # bytes that belong to no tensor
    assert any("belong to no tensor" in p for p in inspect_safetensors_header(longer).problems)
    shorter = write_adapter(tmp_path / "c", seed=1) / WEIGHTS
    shorter.write_bytes(shorter.read_bytes()[:-4])
    assert inspect_safetensors_header(shorter).problems


def test_a_header_with_a_problem_is_not_kept(tmp_path: Path) -> None:
    path = write_adapter(tmp_path / "a", seed=1) / WEIGHTS
    path.write_bytes(path.read_bytes() + b"\0" * 4)
    checked_headers._kept.clear()
    for _ in range(2):  # refused the same way each time, never answered from memory
        assert inspect_safetensors_header(path).problems
    assert checked_headers.known_header(_header(path), path.stat().st_size) is None


def test_nan_is_found_in_a_file_whose_header_was_kept(tmp_path: Path) -> None:
    read_adapter_dir(write_adapter(tmp_path / "a", seed=1))
    directory = write_adapter(tmp_path / "b", seed=2)
    path = directory / WEIGHTS
    data = bytearray(path.read_bytes())
    start = 8 + len(_header(path))
    data[start : start + 4] = np.array([np.nan], dtype="<f4").tobytes()
    path.write_bytes(bytes(data))
    assert checked_headers.known_header(_header(path), path.stat().st_size) is not None
    with pytest.raises(ValidationError, match="NaN or Inf"):
        read_adapter_dir(directory)


def test_only_small_headers_are_kept() -> None:
    big = b"{" + b" " * checked_headers._LARGEST + b"}"
    checked_headers.keep_header(big, 10**6, checked_headers.CheckedHeader({}, {}, 0))
    assert checked_headers.known_header(big, 10**6) is None
