"""docs/ops.md and docs/benchmarks.md name commands and options that exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest

from registry.cli import main

ROOT = Path(__file__).resolve().parent.parent


def _commands(doc: str) -> list[list[str]]:
    text = (ROOT / "docs" / doc).read_text()
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith(("adapters ", "python ")):
                found.append(shlex.split(line))
    return found


@pytest.mark.parametrize("doc", ["ops.md"])
def test_documented_adapters_commands_parse(doc: str) -> None:
    commands = [c for c in _commands(doc) if c[0] == "adapters"]
    assert len(commands) >= 5
    for words in commands:
        command = main.get_command(click.Context(main), words[1])
        assert command is not None, words
        known = {opt for param in command.params for opt in param.opts}
        used = {w.split("=", 1)[0] for w in words[2:] if w.startswith("--")}
        assert used <= known, (words, used - known)


def test_documented_benchmarks_exist() -> None:
    scripts = [c[1] for c in _commands("benchmarks.md") if c[0] == "python"]
    assert {"benchmarks/bench_combine.py", "benchmarks/bench_merge.py"} <= set(scripts)
    for script in scripts:
        assert (ROOT / script).is_file(), script
