"""How long-running library calls report progress; the CLI draws the bar."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, label: str, total_bytes: int) -> None: ...

    def advance(self, count: int) -> None: ...

    def finish(self) -> None: ...


class NoProgress:
    def start(self, label: str, total_bytes: int) -> None:
        pass

    def advance(self, count: int) -> None:
        pass

    def finish(self) -> None:
        pass
