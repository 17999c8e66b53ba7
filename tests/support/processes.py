"""What the test servers started as processes share (SeaweedFS, Azurite): a log in their
work directory, an abrupt kill for the fault tests, an orderly stop, and a progress
callback that kills one mid-transfer."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from registry.progress import NoProgress


class ServerProcess:
    """Mixed into a server dataclass that has ``workdir``, ``process`` and ``log_name``."""

    workdir: Path
    process: subprocess.Popen[bytes] | None
    log_name: str

    def log_tail(self) -> str:
        try:
            return (self.workdir / self.log_name).read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def kill(self) -> None:
        """Stop at once, mid-request (SIGKILL to the whole process group)."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.process = None


class KillAfter(NoProgress):
    """Kills the server once ``limit`` bytes went by: mid-transfer, as a crash would."""

    def __init__(self, server: ServerProcess, limit: int) -> None:
        self.server, self.limit, self.seen = server, limit, 0

    def advance(self, count: int) -> None:
        self.seen += count
        if self.seen >= self.limit and self.server.process is not None:
            self.server.kill()
