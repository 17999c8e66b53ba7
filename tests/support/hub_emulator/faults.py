"""Failure injection for the emulator: dropped downloads, hostile downloads (a body that
never ends, one that trickles), error answers (optionally echoing the request's headers,
Authorization included), a hook before a commit is applied (to land a concurrent push)."""

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
    echo_headers: bool = False


@dataclass
class Hostile:
    path: str
    mode: str  # "endless": bytes until the client hangs up; "trickle": one byte per interval
    interval: float = 2.0


@dataclass
class Faults:
    drops: list[Drop] = field(default_factory=list)
    errors: list[InjectedError] = field(default_factory=list)
    hostile: list[Hostile] = field(default_factory=list)
    # Called with (repo_id, branch) when a commit request arrives, before it is checked.
    before_commit: Callable[[str, str], None] | None = None

    def drop_download(self, path: str, *, after_bytes: int = 64, times: int | None = 1) -> None:
        """Close the connection after ``after_bytes`` of the body of GET resolve/.../path."""
        self.drops.append(Drop(path, after_bytes, times))

    def fail(
        self,
        method: str,
        pattern: str,
        status: int,
        *,
        times: int | None = 1,
        echo_headers: bool = False,
    ) -> None:
        """Answer requests whose path matches ``pattern`` (a regex) with ``status``; with
        ``echo_headers`` the error message repeats every request header, as some proxies do."""
        self.errors.append(
            InjectedError(method.upper(), re.compile(pattern), status, times, echo_headers)
        )

    def endless_download(self, path: str) -> None:
        """GET resolve/.../path streams bytes without end (no Content-Length)."""
        self.hostile.append(Hostile(path, "endless"))

    def trickle_download(self, path: str, interval: float = 2.0) -> None:
        """GET resolve/.../path sends its body one byte every ``interval`` seconds."""
        self.hostile.append(Hostile(path, "trickle", interval))

    def take_hostile(self, path: str) -> Hostile | None:
        return next((h for h in self.hostile if h.path == path), None)

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
