"""Named crash points, for the crash-safety tests (``tests/test_crash.py``).

``fault_point(name)`` marks a step of a write (a blob renamed into place, a catalog
transaction about to commit, a merged shard written, ...). It does nothing unless the
environment variable ``ADAPTERS_FAULT_POINT`` names that point:

- ``NAME``: the process kills itself with SIGKILL the first time it reaches ``NAME``;
- ``NAME#N``: the N-th time (1-based) it reaches ``NAME`` in this process.

SIGKILL is a real crash: no ``finally`` block, ``atexit`` hook or rollback runs, so what
is left on disk is exactly what a power cut or OOM kill at that step would leave (minus
the page cache, which survives a process kill). The tests then check that the registry
is consistent and that the interrupted command can be run again to completion.

The variable is read once; a point that does not fire costs a comparison.
"""

from __future__ import annotations

import os
import signal

ENV_VAR = "ADAPTERS_FAULT_POINT"

_UNSET = ("", 0)
_target: tuple[str, int] | None = None  # (point name, occurrence); parsed on first use
_reached: dict[str, int] = {}


def _parse(value: str) -> tuple[str, int]:
    name, _, count = value.strip().partition("#")
    if not name:
        return _UNSET
    try:
        occurrence = int(count) if count else 1
    except ValueError:
        raise ValueError(f"{ENV_VAR}={value!r}: expected NAME or NAME#N") from None
    if occurrence < 1:
        raise ValueError(f"{ENV_VAR}={value!r}: N counts from 1")
    return name, occurrence


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ``ADAPTERS_FAULT_POINT`` selects this visit of
    ``name``; otherwise do nothing."""
    global _target
    if _target is None:
        _target = _parse(os.environ.get(ENV_VAR, ""))
    if _target[0] != name:
        return
    seen = _reached.get(name, 0) + 1
    _reached[name] = seen
    if seen == _target[1]:
        os.kill(os.getpid(), signal.SIGKILL)

