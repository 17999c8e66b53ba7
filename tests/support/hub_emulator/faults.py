"""Failure injection for the emulator: dropped downloads, error answers, a hook before a
commit is applied (to land a concurrent push)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Drop:
    path: str
    after_bytes: int
    times: int | None  # None: every time


@dataclass
class InjectedError:
    method: str
    pattern: re.Pattern[str]
    status: int
    times: int | None


@dataclass
class Faults:
    drops: list[Drop] = field(default_factory=list)
    errors: list[InjectedError] = field(default_factory=list)
    # Called with (repo_id, branch) when a commit request arrives, before it is checked.
    before_commit: Callable[[str, str], None] | None = None

    def drop_download(self, path: str, *, after_bytes: int = 64, times: int | None = 1) -> None:
        """Close the connection after ``after_bytes`` of the body of GET resolve/.../path."""
        self.drops.append(Drop(path, after_bytes, times))

    def fail(self, method: str, pattern: str, status: int, *, times: int | None = 1) -> None:
        """Answer requests whose path matches ``pattern`` (a regex) with ``status``."""
        self.errors.append(InjectedError(method.upper(), re.compile(pattern), status, times))

    def take_drop(self, path: str) -> Drop | None:
        for drop in self.drops:
            if drop.path == path and (drop.times is None or drop.times > 0):
                if drop.times is not None:
                    drop.times -= 1
                return drop
        return None

    def take_error(self, method: str, path: str) -> InjectedError | None:
        for error in self.errors:
            if error.method == method and error.pattern.search(path):
                if error.times is not None:
                    if error.times <= 0:
                        continue
                    error.times -= 1
                return error
        return None

