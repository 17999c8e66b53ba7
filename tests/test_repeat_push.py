"""A push of content already stored applies its alias, evals and tags to the stored
version, through the alias gates, and says so; a refused gate applies nothing (exit 1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.handmade import write_lora
from support.lifecycle import one_line_error, run

from registry import Registry
from registry.errors import GateError

POLICY = {
    "version": 1,
    "rules": [{"alias": "prod", "evals": [{"metric": "accuracy", "min": 0.9}]}],
}


def _policy(registry: Registry) -> None:
    (registry.home.root / "policy.json").write_text(json.dumps(POLICY))


def _actions(registry: Registry) -> list[str]:
    return [e.action for e in registry.log("x")]


def test_python_repeated_push_applies_alias_evals_and_tags(
    registry: Registry, tmp_path: Path
) -> None:
    directory = write_lora(tmp_path / "a", 1)
    first = registry.push(directory, name="x")
    assert first.created and first.applied == ""
    again = registry.push(
        directory,
        name="x",
        alias="staging",
        evals={"accuracy": 0.8, "f1": 0.7},
        eval_dataset="spider",
        tags={"team": "sql"},
    )
    assert not again.created
    assert again.version.ref == first.version.ref
    assert again.applied == "alias staging, 2 evals, 1 tag"
    assert registry.get("x@staging").digest == first.version.digest
    stored = registry.get("x@1")
    assert {(e.metric, e.value, e.dataset) for e in stored.evals} == {
        ("accuracy", 0.8, "spider"),
        ("f1", 0.7, "spider"),
    }
    assert stored.tags == {"team": "sql"}
    assert again.version.tags == {"team": "sql"}  # the result shows the applied state
    assert again.to_dict()["applied"] == {"alias": "staging", "evals": 2, "tags": ["team"]}
    assert {"eval", "alias", "tag"} <= set(_actions(registry))
    # Evals are appended, never replaced.
    registry.push(directory, name="x", evals={"accuracy": 0.85})
    assert len(registry.get("x@1").evals) == 3


def test_python_gate_refusal_applies_nothing(registry: Registry, tmp_path: Path) -> None:
    directory = write_lora(tmp_path / "a", 1)
    registry.push(directory, name="x")
    _policy(registry)
    events = len(registry.log("x"))
    with pytest.raises(GateError, match=r"already stored as x@1.*accuracy.*nothing was applied"):
        registry.push(directory, name="x", alias="prod", evals={"accuracy": 0.5}, tags={"k": "v"})
    stored = registry.get("x@1")
    assert stored.evals == () and stored.tags == {}
    assert len(registry.log("x")) == events
    # Pushed evals count towards the gate, as on a first push.
    ok = registry.push(directory, name="x", alias="prod", evals={"accuracy": 0.95})
    assert ok.applied == "alias prod, 1 eval"
    assert registry.get("x@prod").version == "1"


def test_stored_evals_satisfy_the_gate_of_a_repeated_push(
    registry: Registry, tmp_path: Path
) -> None:
    directory = write_lora(tmp_path / "a", 1)
    registry.push(directory, name="x", evals={"accuracy": 0.95})
    _policy(registry)
    assert registry.push(directory, name="x", alias="prod").applied == "alias prod"


def test_cli_repeated_push_reports_and_exits(registry: Registry, tmp_path: Path) -> None:
    directory = str(write_lora(tmp_path / "a", 1))
    assert run("push", directory, "--name", "x").exit_code == 0
    again = run(
        "push", directory, "--name", "x", "--alias", "staging",
        "--eval", "accuracy=0.8", "--eval", "f1=0.5", "--tag", "team=sql",
    )
    assert again.exit_code == 0, again.stderr
    assert "already stored as x@1; applied alias staging, 2 evals, 1 tag" in again.stderr
    assert again.stdout.startswith("x@1 sha256:")
    as_json = run("push", directory, "--name", "x", "--tag", "stage=2", "--json")
    assert json.loads(as_json.stdout)["applied"] == {"alias": None, "evals": 0, "tags": ["stage"]}
    _policy(registry)
    refused = run("push", directory, "--name", "x", "--alias", "prod", "--eval", "accuracy=0.5")
    assert refused.exit_code == 1
    assert one_line_error(refused)
    assert "accuracy" in refused.stderr and "nothing was applied" in refused.stderr
    assert len(registry.get("x@1").evals) == 2
    plain = run("push", directory, "--name", "x")
    assert plain.exit_code == 0 and "nothing was written" in plain.stderr
