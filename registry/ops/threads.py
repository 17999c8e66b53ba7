"""How many torch threads an operator (merge, combine, extract, resize) runs with.

On a shared machine more threads can be slower than one: torch's intra-op threads
wait for each other at every operation, and a thread that lost its core to another
process holds all the others up (``docs/benchmarks.md``: ``combine --method svd`` on 2
cores with one of them busy). The rule: one thread per core that the 1-minute load
average leaves idle, at least one, at most the cores this process may run on.
``ADAPTERS_TORCH_THREADS=N`` overrides it (``0`` or ``auto``: the rule).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from registry.errors import ArgumentError

THREADS_ENV = "ADAPTERS_TORCH_THREADS"

P = ParamSpec("P")
R = TypeVar("R")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def operator_threads() -> int:
    """The thread count for the next operator: ``ADAPTERS_TORCH_THREADS``, else the rule."""
    given = os.environ.get(THREADS_ENV, "").strip().lower()
    if given not in ("", "0", "auto"):
        try:
            threads = int(given)
        except ValueError:
            threads = 0
        if threads < 1:
            raise ArgumentError(
                f"{THREADS_ENV}={given!r} is not a thread count; set a positive number, "
                "or 'auto' for one per idle core"
            )
        return threads
    cores = _cores()
    try:
        busy = os.getloadavg()[0]
    except OSError:
        return cores
    return max(1, min(cores, int(cores - busy + 0.5)))


@contextmanager
def torch_threads(threads: int | None = None) -> Iterator[int]:
    """Run the block with ``threads`` (default: ``operator_threads()``) torch threads,
    then give back the count the caller had."""
    import torch

    chosen = operator_threads() if threads is None else threads
    before = torch.get_num_threads()
    torch.set_num_threads(chosen)
    try:
        yield chosen
    finally:
        torch.set_num_threads(before)


def with_operator_threads(function: Callable[P, R]) -> Callable[P, R]:
    """Run ``function`` under ``torch_threads()``; nested operators keep the outer count."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if _depth[0]:
            return function(*args, **kwargs)
        _depth[0] += 1
        try:
            with torch_threads():
                return function(*args, **kwargs)
        finally:
            _depth[0] -= 1

    return wrapper


_depth = [0]
