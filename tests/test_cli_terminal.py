"""A terminal session: `adapters hub pull` in a pseudo-terminal draws one progress bar
(bytes, rate, ETA) that ends at 100 %, with no second bar stacked beside it (no cursor-up
sequences), and prints its result on the next line."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest
from support.hub_emulator import DEFAULT_TOKEN, HubEmulator
from support.peft_adapters import make_adapter

REPO = Path(__file__).resolve().parent.parent
CURSOR_UP = "\x1b[A"


def _in_terminal(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "registry.cli", *args],
        env=env,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        close_fds=True,
    )
    os.close(slave)
    output = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(master)
    return process.wait(timeout=120), output.decode()


def _screen(raw: str) -> list[str]:
    """The lines a terminal ends up showing: each carriage return redraws its line."""
    plain = re.sub(r"\x1b\[[0-9;]*m", "", raw)  # colours
    return [line.split("\r")[-1].rstrip() for line in plain.split("\r\n") if line.strip("\r")]


@pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
def test_hub_pull_in_a_terminal_draws_one_clean_bar(tmp_path: Path) -> None:
    made = make_adapter("lora", tmp_path / "my-lora")
    with HubEmulator() as hub:
        env = {
            **os.environ,
            "PYTHONPATH": str(REPO),
            "HF_ENDPOINT": hub.url,
            "HF_TOKEN": DEFAULT_TOKEN,
            "HF_HUB_OFFLINE": "0",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HOME": str(tmp_path / "hf"),
            "ADAPTERS_HOME": str(tmp_path / "source"),
            "TERM": "xterm",
        }
        env.pop("NO_COLOR", None)
        env.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        for args in (
            ["push", str(made.directory), "--name", "my-lora"],
            ["hub", "push", "my-lora@1", "alice/my-lora"],
        ):
            subprocess.run(
                [sys.executable, "-m", "registry.cli", *args],
                env=env,
                check=True,
                capture_output=True,
            )
        code, raw = _in_terminal(
            ["hub", "pull", "alice/my-lora"], {**env, "ADAPTERS_HOME": str(tmp_path / "target")}
        )
    assert code == 0, raw
    assert CURSOR_UP not in raw, raw  # no bars stacked on top of each other
    assert "\x1b[32m" in raw  # coloured on a terminal
    screen = _screen(raw)
    assert len(screen) == 2, screen
    bar, result = screen
    size = r"[\d.]+ [KM]?B"
    end = rf"100%\|█+\| {size}/{size} \[[\d:]+<[\d:]+, {size}/s\]$"
    assert re.match(rf"^storing: {end}", bar), bar
    # The download itself was drawn on that same line (bytes, rate, ETA), and nothing
    # but our bar's frames ever reached it: no client bar ("Fetching", "Downloading").
    frames = [f for f in re.sub(r"\x1b\[[0-9;]*m", "", raw).split("\r\n")[0].split("\r") if f]
    assert any(re.match(rf"^downloading: {end}", f) for f in frames), frames
    assert all(re.match(r"^(downloading|checking|storing): +\d+%\|", f) for f in frames), frames
    assert "KB" in bar
    assert result.startswith("alice/my-lora@main (commit ") and "-> my-lora@1 sha256:" in result
