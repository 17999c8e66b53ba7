"""A progress bar on stderr when it is a terminal; silence otherwise.

The bar is a tqdm bar (bytes, rate and ETA), the library huggingface_hub draws its own
bars with: tqdm gives concurrent bars their own lines under one lock, so ours and the
Hub client's never write over each other. tqdm is imported only when a bar starts.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from registry.cli.render import human_size
from registry.progress import NoProgress, Progress

# Sizes as the rest of the CLI writes them (12.3 KB, 4.0 MB), where tqdm would print
# "12.3k/4.00M" with no unit.
BAR_FORMAT = "{l_bar}{bar}| {done}/{size} [{elapsed}<{remaining}, {speed}/s]"


def _byte_bar(tqdm: type) -> type:
    class ByteBar(tqdm):  # type: ignore[misc]
        @property
        def format_dict(self) -> dict[str, Any]:
            values: dict[str, Any] = super().format_dict
            elapsed = values["elapsed"]
            rate = values["rate"] or (values["n"] / elapsed if elapsed else 0)
            values.update(
                done=human_size(values["n"]),
                size=human_size(values["total"] or 0),
                speed=human_size(int(rate)),
            )
            return values

    return ByteBar


class TerminalProgress:
    """``label`` replaces the library's labels (e.g. "uploading" for hub push); with
    ``single`` every step reuses one bar, closed by ``close``, so a command made of
    several steps (hub pull: checking, storing) draws one line, not a stack of them."""

    def __init__(self, label: str | None = None, *, single: bool = False) -> None:
        self._bar: Any = None
        self._label = label
        self._single = single

    def start(self, label: str, total_bytes: int) -> None:
        from tqdm.auto import tqdm

        if self._single and self._bar is not None:
            self._bar.refresh()  # the last step's end is drawn before the next replaces it
            self._bar.set_description(self._label or label, refresh=False)
            self._bar.reset(total=max(total_bytes, 1))
            return
        self.finish()
        self._bar = _byte_bar(tqdm)(
            total=max(total_bytes, 1),
            desc=self._label or label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            bar_format=BAR_FORMAT,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=True,
            colour=None if "NO_COLOR" in os.environ else "green",
        )

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def finish(self) -> None:
        if not self._single:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_for_terminal(label: str | None = None, *, single: bool = False) -> Progress:
    """A bar on a terminal, nothing otherwise; a ``single`` bar closes with the command."""
    if not sys.stderr.isatty():
        return NoProgress()
    bar = TerminalProgress(label, single=single)
    if single:
        click.get_current_context().call_on_close(bar.close)
    return bar


def close_progress(progress: Progress) -> None:
    """Close a ``single`` bar now, before the command prints its result."""
    if isinstance(progress, TerminalProgress):
        progress.close()
