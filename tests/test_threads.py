"""The torch thread count operators run with (registry/ops/threads.py)."""

from __future__ import annotations

import os

import pytest
import torch

from registry.errors import ArgumentError
from registry.ops.combine import combine
from registry.ops.extract import extract
from registry.ops.merge import merge_checkpoint
from registry.ops.resize import resize
from registry.ops.threads import (
    THREADS_ENV,
    operator_threads,
    torch_threads,
    with_operator_threads,
)


def test_the_variable_sets_the_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "3")
    assert operator_threads() == 3
    for bad in ("-1", "many"):
        monkeypatch.setenv(THREADS_ENV, bad)
        with pytest.raises(ArgumentError, match=THREADS_ENV):
            operator_threads()


def test_the_rule_leaves_busy_cores_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "auto")
    cores = len(os.sched_getaffinity(0))
    expected = max(1, min(cores, int(cores - os.getloadavg()[0] + 0.5)))
    assert operator_threads() in (expected - 1, expected, expected + 1)  # load moves
    assert 1 <= operator_threads() <= cores


def test_operators_run_with_the_chosen_count_and_give_it_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[int] = []

    @with_operator_threads
    def inner() -> None:
        seen.append(torch.get_num_threads())

    @with_operator_threads
    def outer() -> None:
        seen.append(torch.get_num_threads())
        monkeypatch.setenv(THREADS_ENV, "2")
        inner()  # nested: keeps the outer operator's count

    before = torch.get_num_threads()
    monkeypatch.setenv(THREADS_ENV, "1")
    outer()
    assert seen == [1, 1]
    assert torch.get_num_threads() == before
    with torch_threads(1) as chosen:
        assert chosen == 1 == torch.get_num_threads()
    assert torch.get_num_threads() == before
    for operator in (combine, extract, resize, merge_checkpoint):
        assert operator.__wrapped__ is not None  # type: ignore[attr-defined]
