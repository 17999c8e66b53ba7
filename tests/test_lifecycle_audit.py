"""The audit log: one append-only event per change, with time, actor and details."""

from __future__ import annotations

import getpass
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from support.handmade import write_lora
from support.lifecycle import run

from registry import Registry
from registry.errors import GateError


def test_every_change_is_one_event(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_lora(tmp_path / "a", 1), name="x", evals={"acc": 0.9})
    registry.push(write_lora(tmp_path / "b", 2), name="x")
    registry.record_eval("x@2", {"acc": 0.95}, dataset="d", notes="n")
    registry.set_alias("x@2", "prod", note="ship it")
    registry.remove_alias("x", "prod")
    registry.yank("x@1", "bad")
    registry.unyank("x@1")
    registry.remove("x@1", reason="gdpr")
    registry.gc()
    registry.record_event("hub-push", "x", "2", {"repo": "org/x", "revision": "abc"})
    events = registry.log()
    assert [(e.action, e.ref) for e in events] == [
        ("push", "x@1"),
        ("push", "x@2"),
        ("eval", "x@2"),
        ("alias", "x@2"),
        ("alias-rm", "x@2"),
        ("yank", "x@1"),
        ("unyank", "x@1"),
        ("rm", "x@1"),
        ("gc", None),
        ("hub-push", "x@2"),
    ]
    assert {e.actor for e in events} == {"tester@ci"}
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert all(e.at.year >= 2024 for e in events)
    details = {e.action: e.details for e in events}
    assert details["eval"] == {"scores": {"acc": 0.95}, "dataset": "d", "split": "", "notes": "n"}
    assert details["alias"]["note"] == "ship it" and details["alias"]["previous"] is None
    assert details["yank"]["reason"] == "bad"
    assert details["rm"]["reason"] == "gdpr"
    assert details["gc"]["blobs"] == len(details["gc"]["digests"]) > 0
    assert details["hub-push"] == {"repo": "org/x", "revision": "abc"}


def test_refused_changes_record_nothing(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_lora(tmp_path / "a", 1), name="x")
    registry.set_alias("x@1", "prod")
    before = registry.log()
    with pytest.raises(GateError):
        registry.set_alias("x@1", "staging", requires=["acc>=0.9"])
    assert run("rm", "x@1").exit_code == 1
    assert run("eval", "x@1", "acc=oops").exit_code == 2
    assert registry.set_alias("x@1", "prod").changed is False
    assert registry.log() == before


def test_actor_defaults_to_user_at_host(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ADAPTERS_ACTOR")
    registry.push(write_lora(tmp_path / "a", 1), name="x")
    monkeypatch.setenv("ADAPTERS_ACTOR", "release-bot")
    registry.yank("x@1", "superseded")
    actors = [e.actor for e in registry.log()]
    assert actors == [f"{getpass.getuser()}@{socket.gethostname()}", "release-bot"]
    assert registry.log(actor="release-bot")[0].action == "yank"


@pytest.mark.parametrize("table", ["audit_events", "alias_history"])
def test_history_tables_are_append_only(registry: Registry, tmp_path: Path, table: str) -> None:
    registry.push(write_lora(tmp_path / "a", 1), name="x", alias="prod")
    statements = [f"UPDATE {table} SET actor = 'mallory'", f"DELETE FROM {table}"]
    if registry.catalog.engine.dialect.name == "postgresql":
        statements.append(f"TRUNCATE {table}")
    for statement in statements:
        with (
            pytest.raises(DBAPIError, match="append-only"),
            registry.catalog.engine.begin() as connection,
        ):
            connection.execute(text(statement))
    assert {e.actor for e in registry.log()} == {"tester@ci"}
    assert len(registry.alias_history("x")) == 1


def test_log_filters_and_output(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_lora(tmp_path / "a", 1), name="x")
    registry.push(write_lora(tmp_path / "b", 2), name="x", alias="prod")
    registry.push(write_lora(tmp_path / "c", 3), name="y")
    registry.record_eval("x@1", {"acc": 0.5})
    registry.yank("x@1", "old")
    by_name = json.loads(run("log", "x", "--json").stdout)
    assert [(e["action"], e["version"]) for e in by_name] == [
        ("push", "1"),
        ("push", "2"),
        ("eval", "1"),
        ("yank", "1"),
    ]
    assert set(by_name[0]) == {"id", "at", "actor", "action", "name", "version", "details"}
    assert [e.action for e in registry.log("x@1")] == ["push", "eval", "yank"]
    assert [e.action for e in registry.log("x@prod")] == ["push"]
    assert [e.version for e in registry.log("x@sha256:" + registry.get("x@2").digest[7:20])] == [
        "2"
    ]
    newest = json.loads(run("log", "--limit", "2", "--json").stdout)
    assert [e["action"] for e in newest] == ["eval", "yank"]
    picked = run("log", "--action", "yank", "--action", "eval", "--json")
    assert [e["action"] for e in json.loads(picked.stdout)] == ["eval", "yank"]
    table = run("log", "x")
    assert table.exit_code == 0 and "reason=old" in table.stdout and "TIME" in table.stdout
    assert "sha256:" in table.stdout and "..." in table.stdout  # digests shortened
    empty = run("log", "--actor", "nobody")
    assert empty.exit_code == 0 and empty.stderr.strip() == "no events"
    assert run("log", "--limit", "0").exit_code == 2
    unknown = run("log", "nope@prod")
    assert unknown.exit_code == 1 and "no adapter named 'nope'" in unknown.stderr


LIGHT_COMMANDS = [
    ["log"],
    ["log", "--json"],
    ["gc", "--dry-run"],
    ["list", "--where", "acc>=0.5", "--sort", "acc"],
    ["alias", "--help"],
    ["lineage", "--help"],
    ["compare", "--help"],
]

PROBE = """
import sys
from registry.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print("TORCH_IMPORTED" if "torch" in sys.modules else "TORCH_NOT_IMPORTED")
"""


@pytest.mark.parametrize("args", LIGHT_COMMANDS, ids=" ".join)
def test_lifecycle_commands_do_not_import_torch(args: list[str], hermetic_env: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("TORCH_NOT_IMPORTED"), done.stdout


def test_every_lifecycle_command_has_help_with_an_example() -> None:
    for command in ("eval", "compare", "alias", "yank", "unyank", "rm", "gc", "log", "lineage"):
        shown = run(command, "--help")
        assert shown.exit_code == 0
        assert "Example:" in shown.stdout and f"adapters {command}" in shown.stdout, command
