"""A progress bar on stderr when it is a terminal; silence otherwise.

The bar is a tqdm bar (bytes, rate and ETA), the library huggingface_hub draws its own
bars with: tqdm gives concurrent bars their own lines under one lock, so ours and the
Hub client's never write over each other. tqdm is imported only when a bar starts.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from registry.progress import NoProgress, Progress


class TerminalProgress:
    def __init__(self, label: str | None = None) -> None:
        self._bar: Any = None
        self._label = label  # replaces the library's label, e.g. "uploading" for hub push

    def start(self, label: str, total_bytes: int) -> None:
        from tqdm.auto import tqdm

        self.finish()
        self._bar = tqdm(
            total=max(total_bytes, 1),
            desc=self._label or label,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            file=sys.stderr,
            dynamic_ncols=True,
            leave=True,
            colour=None if "NO_COLOR" in os.environ else "green",
        )

    def advance(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def finish(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def progress_for_terminal(label: str | None = None) -> Progress:
    return TerminalProgress(label) if sys.stderr.isatty() else NoProgress()
