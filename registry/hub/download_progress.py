"""The bytes huggingface_hub downloads, reported to our ``Progress``.

``snapshot_download`` takes a ``tqdm_class`` for its bars; this one draws nothing and
forwards the bytes written to the files being downloaded, so a terminal shows one bar
(ours: bytes, rate, ETA) instead of the client's bars stacked beside it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from registry.progress import Progress

# The client's bar of network bytes: the same bytes as the files' bar over plain HTTP,
# fewer (compressed, deduplicated) over Xet, so counting it too would count twice.
_TRANSFER_BAR = "Downloading bytes"


def forwarding_bars(progress: Progress) -> type:
    """A stand-in for tqdm: every bar the client opens in bytes (but its transfer bar)
    adds its updates to ``progress``; the client's download threads share one lock."""
    lock = threading.Lock()

    class ForwardingBar:
        def __init__(self, *_args: Any, **kwargs: Any) -> None:
            self.total = kwargs.get("total")
            self.n = int(kwargs.get("initial") or 0)
            description = str(kwargs.get("desc") or "")
            self._forward = kwargs.get("unit") == "B" and not description.startswith(_TRANSFER_BAR)
            self.format_dict: dict[str, Any] = {}

        def update(self, count: float | None = 1) -> None:
            step = int(count or 0)
            self.n += step
            if self._forward and step:
                with lock:
                    progress.advance(step)

        def __enter__(self) -> ForwardingBar:
            return self

        def __exit__(self, *_exc: object) -> None:
            pass

        def __getattr__(self, _name: str) -> Callable[..., None]:
            # refresh, close, set_description, set_postfix_str...: nothing to draw.
            return _ignore

    return ForwardingBar


def _ignore(*_args: Any, **_kwargs: Any) -> None:
    return None
