"""A progress bar on stderr when it is a terminal; silence otherwise."""

from __future__ import annotations

import sys
from typing import Any

import click

from registry.progress import NoProgress, Progress


class TerminalProgress:
    def __init__(self) -> None:
        self._bar: Any = None

    def start(self, label: str, total_bytes: int) -> None:
        self.finish()
        self._bar = click.progressbar(length=max(total_bytes, 1), label=label, file=sys.stderr)
        self._bar.__enter__()

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None


def progress_for_terminal() -> Progress:
    return TerminalProgress() if sys.stderr.isatty() else NoProgress()
