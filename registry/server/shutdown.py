"""Stopping the server on SIGTERM or SIGINT: requests in flight (pushes) finish, and
the process then exits 0, as a service manager expects of a clean stop.

uvicorn stops accepting connections on the first signal and waits for requests in
flight up to its graceful timeout, then re-raises the signal after a clean stop, so that
the process would die of it (status 143 for SIGTERM). Here the stop is logged (as JSON,
server/logs), a second signal of either kind stops at once (uvicorn does that only for a
second SIGINT), and a stop that finished its requests exits 0; one forced by a second
signal exits 1.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

import uvicorn

_log = logging.getLogger("registry.server")


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.forced = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        name = signal.Signals(sig).name
        if self.should_exit:
            self.forced = True
            self.force_exit = True
            _say(f"{name} again: stopping now, without waiting for requests in flight")
        else:
            seconds = self.config.timeout_graceful_shutdown
            _say(f"{name}: stopping; requests in flight may finish (up to {seconds} s)")
        super().handle_exit(sig, frame)
        self.force_exit = self.forced

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        with super().capture_signals():
            yield
            # The stop this signal asked for is done: not a death by the signal.
            self._captured_signals.clear()


def serve_until_stopped(config: uvicorn.Config) -> int:
    """Run until a signal stops the server; the exit status (0: stopped cleanly)."""
    server = GracefulServer(config)
    server.run()
    if server.forced:
        _say("stopped; requests in flight were cut off")
        return 1
    _say("stopped")
    return 0


def _say(line: str) -> None:
    _log.info(line)
