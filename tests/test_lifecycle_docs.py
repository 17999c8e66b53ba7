"""docs/lifecycle.md: its commands exist with the options shown, its policy example is
valid, and its Python example runs."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import click
import pytest
from support.handmade import write_lora

from registry import Registry, YankedVersionWarning, schemas
from registry.cli import main
from registry.lifecycle.policy import load_policy

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "lifecycle.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", DOC, flags=re.S)


def documented_commands() -> list[list[str]]:
    found = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.split("  #", 1)[0].strip()
            if line.startswith("adapters "):
                found.append(shlex.split(line))
    return found


def test_documented_commands_and_options_exist() -> None:
    commands = documented_commands()
    assert len(commands) >= 15
    covered = set()
    for words in commands:
        command = main.get_command(click.Context(main), words[1])
        assert command is not None, words
        covered.add(words[1])
        known = {opt for param in command.params for opt in param.opts}
        used = {w.split("=", 1)[0] for w in words[2:] if w.startswith("--")}
        assert used <= known, (words, used - known)
    assert {"eval", "compare", "alias", "yank", "unyank", "rm", "gc", "log", "lineage"} <= covered


def test_policy_example_is_valid(tmp_path: Path) -> None:
    [example] = [b for b in blocks("json") if '"rules"' in b]
    assert schemas.validate(json.loads(example), "policy") == []
    (tmp_path / "policy.json").write_text(example)
    policy = load_policy(tmp_path)
    assert [r.text for r in policy.requirements("sql-lora", "prod")] == [
        "accuracy@gsm8k>=0.93",
        "latency_ms<=200",
        "verify",
        "base-fingerprint",
        "exact_match@spider>=0.8",
    ]
    assert policy.requirements("chat", "staging") == []


def test_python_example_runs(registry: Registry, tmp_path: Path) -> None:
    for seed in range(1, 5):
        registry.push(write_lora(tmp_path / f"v{seed}", seed), name="my-lora")
    registry.record_eval("my-lora@4", {"accuracy": 0.95}, dataset="gsm8k")
    [example] = blocks("python")
    exec(compile(example, "docs/lifecycle.md", "exec"), {})
    assert registry.get("my-lora@prod").version == "4"
    with pytest.warns(YankedVersionWarning):
        assert registry.get("my-lora@2").yanked
    assert [e.action for e in registry.log("my-lora@1")] == ["push", "rm"]
