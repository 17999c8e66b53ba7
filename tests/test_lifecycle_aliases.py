"""Aliases: atomic moves, history, promotion gates from --require and policy.json, and
two processes moving one alias at once; on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.handmade import write_lora
from support.lifecycle import insert, manifest, one_line_error, run

from registry import Registry
from registry.errors import ConflictError, GateError, NotFoundError, ValidationError
from registry.lifecycle.policy import load_policy

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def three(registry: Registry, tmp_path: Path) -> Registry:
    for seed in (1, 2, 3):
        registry.push(write_lora(tmp_path / f"v{seed}", seed), name="x")
    return registry


def write_policy(registry: Registry, policy: object) -> Path:
    path = registry.home.root / "policy.json"
    path.write_text(policy if isinstance(policy, str) else json.dumps(policy))
    return path


PROD_POLICY = {
    "version": 1,
    "rules": [
        {
            "alias": "prod",
            "evals": [
                {"metric": "accuracy", "dataset": "gsm8k", "min": 0.93},
                {"metric": "latency_ms", "max": 200},
            ],
        }
    ],
}


# -- moving and history -----------------------------------------------------------------


def test_alias_moves_and_history(three: Registry) -> None:
    first = run("alias", "x@1", "prod")
    assert first.exit_code == 0 and first.stdout.strip() == "x@prod -> x@1"
    moved = run("alias", "x@3", "prod", "--note", "better")
    assert moved.stdout.strip() == "x@prod: x@1 -> x@3"
    same = run("alias", "x@3", "prod")
    assert same.exit_code == 0 and "already points at x@3" in same.stdout
    three.set_alias("x@2", "staging")
    assert three.get("x@prod").version == "3"
    assert three.get("x@3").aliases == ("prod",)
    removed = run("alias", "--rm", "x", "staging")
    assert removed.exit_code == 0 and "pointed at x@2" in removed.stdout
    with pytest.raises(NotFoundError, match="x has no alias 'staging'"):
        three.get("x@staging")
    history = [(c.alias, c.action, c.previous, c.version, c.note) for c in three.alias_history("x")]
    assert history == [
        ("prod", "set", None, "1", ""),
        ("prod", "set", "1", "3", "better"),
        ("staging", "set", None, "2", ""),
        ("staging", "rm", "2", None, ""),
    ]
    only_prod = json.loads(run("alias", "--history", "x@prod", "--json").stdout)
    assert [(c["previous"], c["version"], c["actor"]) for c in only_prod] == [
        (None, "1", "tester@ci"),
        ("1", "3", "tester@ci"),
    ]
    table = run("alias", "--history", "x").stdout
    assert "better" in table and "staging" in table
    assert [e.action for e in three.log("x", actions=["alias", "alias-rm"])] == [
        "alias",
        "alias",
        "alias",
        "alias-rm",
    ]


def test_push_with_alias_is_recorded_in_history(registry: Registry, tmp_path: Path) -> None:
    registry.push(write_lora(tmp_path / "a", 1), name="y", alias="prod")
    registry.push(write_lora(tmp_path / "b", 2), name="y", alias="prod")
    assert [(c.action, c.previous, c.version) for c in registry.alias_history("y")] == [
        ("push", None, "1"),
        ("push", "1", "2"),
    ]


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["x@1"], 2, "expected REF ALIAS"),
        (["x@1", "prod", "extra"], 2, "expected REF ALIAS"),
        (["--rm", "x"], 2, "--rm takes NAME ALIAS"),
        (["--rm", "x", "prod", "--require", "verify"], 2, "only apply when moving"),
        (["--rm", "--history", "x"], 2, "cannot be combined"),
        (["x@1", "v1"], 1, "reads as a version"),
        (["x@1", "Prod"], 1, "invalid alias"),
        (["x@9", "prod"], 1, "x has no version 9"),
        (["--rm", "x", "prod"], 1, "x has no alias 'prod'"),
        (["--rm", "nope", "prod"], 1, "no adapter named 'nope'"),
        (["--history", "nope"], 1, "no adapter named 'nope'"),
        (["x@1", "prod", "--require", "accuracy>>1"], 1, "invalid condition"),
    ],
)
def test_bad_alias_commands_change_nothing(
    three: Registry, args: list[str], code: int, expected: str
) -> None:
    result = run("alias", *args)
    assert result.exit_code == code, result.output
    assert expected in result.output
    if code == 1:
        assert one_line_error(result)
    assert three.alias_history("x") == []


def test_yanked_version_cannot_be_promoted(three: Registry) -> None:
    three.yank("x@2", "broken")
    with pytest.raises(ConflictError, match="x@2 is yanked \\(broken\\); unyank it"):
        three.set_alias("x@2", "prod")
    assert three.alias_history("x") == []


# -- gates --------------------------------------------------------------------------------


def test_require_names_every_unmet_gate(three: Registry) -> None:
    three.record_eval("x@2", {"accuracy": 0.91}, dataset="gsm8k")
    three.set_alias("x@1", "prod")
    refused = run(
        "alias",
        "x@2",
        "prod",
        "--require",
        "accuracy@gsm8k>=0.93",
        "--require",
        "f1>0.5",
        "--require",
        "base-fingerprint",
    )
    assert refused.exit_code == 1 and one_line_error(refused)
    message = refused.stderr
    assert "x@2 cannot become x@prod" in message
    assert "accuracy@gsm8k>=0.93 not met (latest 0.91" in message
    assert "f1>0.5 not met (no f1 eval recorded" in message
    assert "base-fingerprint not met" in message
    assert three.get("x@prod").version == "1"
    with pytest.raises(GateError) as info:
        three.set_alias("x@2", "prod", requires=["accuracy@gsm8k>=0.93"])
    assert info.value.unmet == ["accuracy@gsm8k>=0.93"]
    three.record_eval("x@2", {"accuracy": 0.95}, dataset="gsm8k")
    moved = three.set_alias("x@2", "prod", requires=["accuracy@gsm8k>=0.93", "verify"])
    assert moved.previous == "1" and moved.version == "2"
    assert [(c.name, c.status) for c in moved.gates] == [
        ("accuracy@gsm8k>=0.93", "pass"),
        ("verify", "pass"),
    ]
    # The latest eval decides: a later, worse score closes the gate again.
    three.record_eval("x@2", {"accuracy": 0.90}, dataset="gsm8k")
    assert not three.check_alias("x@2", "prod", requires=["accuracy@gsm8k>=0.93"]).ok


def test_policy_gates_per_alias(three: Registry) -> None:
    write_policy(three, PROD_POLICY)
    refused = run("alias", "x@1", "prod")
    assert refused.exit_code == 1
    assert "accuracy@gsm8k>=0.93 not met (no accuracy@gsm8k eval recorded" in refused.stderr
    assert "latency_ms<=200 not met" in refused.stderr
    assert "required by policy.json rules[0]" in refused.stderr
    # Another alias is not gated by the prod rule.
    assert run("alias", "x@1", "staging").exit_code == 0
    three.record_eval("x@1", {"accuracy": 0.95, "latency_ms": 250}, dataset="gsm8k")
    refused = run("alias", "x@1", "prod")
    assert refused.exit_code == 1 and "latency_ms<=200 not met (latest 250" in refused.stderr
    assert "accuracy" not in refused.stderr
    three.record_eval("x@1", {"latency_ms": 180})
    ok = run("alias", "x@1", "prod")
    assert ok.exit_code == 0, ok.output
    assert "PASS accuracy@gsm8k>=0.93" in ok.stderr
    # An eval on another dataset does not count for a dataset-bound gate.
    three.record_eval("x@2", {"accuracy": 0.99, "latency_ms": 10}, dataset="mmlu")
    assert not three.check_alias("x@2", "prod").ok


def test_policy_rule_scoped_to_adapter_names(registry: Registry, tmp_path: Path) -> None:
    write_policy(
        registry,
        {
            "version": 1,
            "rules": [{"alias": "p*", "adapters": ["team/*"], "base_fingerprint": True}],
        },
    )
    registry.push(write_lora(tmp_path / "a", 1), name="team/a")
    registry.push(write_lora(tmp_path / "b", 2), name="other")
    with pytest.raises(GateError, match="base-fingerprint not met"):
        registry.set_alias("team/a", "prod")
    with pytest.raises(GateError, match="base-fingerprint not met"):
        registry.set_alias("team/a", "preview")
    registry.set_alias("other", "prod")
    registry.set_alias("team/a", "staging")


def test_base_fingerprint_gate_passes_when_recorded(registry: Registry) -> None:
    write_policy(registry, {"version": 1, "rules": [{"alias": "prod", "base_fingerprint": True}]})
    fingerprint = "sha256:" + "ab" * 32
    insert(registry.catalog, "fp", manifest(1, fingerprint=fingerprint))
    insert(registry.catalog, "fp", manifest(2))
    change = registry.set_alias("fp@1", "prod")
    assert change.gates[0].status == "pass" and fingerprint[:23] in change.gates[0].detail
    with pytest.raises(GateError):
        registry.set_alias("fp@2", "prod")


def test_verify_gate_refuses_a_damaged_version(three: Registry) -> None:
    write_policy(three, {"version": 1, "rules": [{"alias": "prod", "verify": True}]})
    three.set_alias("x@1", "prod")
    weights = three.get("x@2").manifest.file("adapter_model.safetensors")
    blob = three.blobs.path(weights.sha256)
    os.chmod(blob, 0o644)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF
    blob.write_bytes(bytes(data))
    refused = run("alias", "x@2", "prod")
    assert refused.exit_code == 1 and one_line_error(refused)
    assert "verify not met" in refused.stderr and "adapter_model.safetensors" in refused.stderr
    assert three.get("x@prod").version == "1"
    checked = run("alias", "x@2", "prod", "--check", "--json")
    assert checked.exit_code == 1
    assert json.loads(checked.stdout)["checks"][0]["status"] == "fail"


def test_check_only_moves_nothing(three: Registry) -> None:
    write_policy(three, PROD_POLICY)
    checked = run("alias", "x@1", "prod", "--check")
    assert checked.exit_code == 1
    assert "FAIL" in checked.stdout and "accuracy@gsm8k>=0.93" in checked.stdout
    three.record_eval("x@1", {"accuracy": 0.99, "latency_ms": 1}, dataset="gsm8k")
    passed = run("alias", "x@1", "prod", "--check")
    assert passed.exit_code == 0 and "FAIL" not in passed.stdout
    assert three.alias_history("x") == []
    ungated = run("alias", "x@1", "canary", "--check")
    assert ungated.exit_code == 0 and "no gates apply" in ungated.stderr


def test_push_alias_obeys_the_policy(registry: Registry, tmp_path: Path) -> None:
    write_policy(registry, PROD_POLICY)
    directory = write_lora(tmp_path / "a", 1)
    refused = run(
        "push", str(directory), "--name", "p", "--alias", "prod", "--eval", "accuracy=0.99"
    )
    assert refused.exit_code == 1 and one_line_error(refused)
    assert "p (being pushed) cannot become p@prod" in refused.stderr
    assert "accuracy@gsm8k>=0.93 not met" in refused.stderr  # the eval had no dataset
    assert registry.list() == []
    assert [e.action for e in registry.log()] == []
    ok = run(
        "push",
        str(directory),
        "--name",
        "p",
        "--alias",
        "prod",
        "--eval",
        "accuracy=0.99",
        "--eval",
        "latency_ms=100",
        "--eval-dataset",
        "gsm8k",
    )
    assert ok.exit_code == 0, ok.output
    assert registry.get("p@prod").version == "1"
    # The refused push's blobs are unreferenced until this push took them; none leaked.
    assert registry.gc(dry_run=True).blobs == ()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"version": 1, "rules": [', "not valid JSON"),
        ('{"version": 2, "rules": []}', "$.version"),
        ('{"version": 1, "rules": [{"alias": "prod"}]}', "$.rules[0]"),
        ('{"version": 1, "rules": [{"alias": "Prod", "verify": true}]}', "$.rules[0].alias"),
        (
            '{"version": 1, "rules": [{"alias": "prod", "evals": [{"metric": "a"}]}]}',
            "$.rules[0].evals[0]",
        ),
        (
            '{"version": 1, "rules": [{"alias": "prod", "evals": '
            '[{"metric": "a", "min": 0.9, "max": 0.1}]}]}',
            "min 0.9 is above max 0.1",
        ),
        (
            '{"version": 1, "rules": [{"alias": "prod", "evals": '
            '[{"metric": "pass@1", "min": 1}]}]}',
            "$.rules[0].evals[0].metric",
        ),
        ('{"version": 1, "rules": [], "extra": 1}', "extra"),
    ],
)
def test_invalid_policy_refuses_every_move(three: Registry, text: str, expected: str) -> None:
    path = write_policy(three, text)
    with pytest.raises(ValidationError) as info:
        load_policy(three.home.root)
    assert str(path) in str(info.value) and expected in str(info.value)
    refused = run("alias", "x@1", "canary")
    assert refused.exit_code == 1 and one_line_error(refused) and expected in refused.stderr
    assert three.alias_history("x") == []


def test_policy_reports_every_problem_at_once(three: Registry) -> None:
    write_policy(
        three,
        {"version": 1, "rules": [{"alias": "prod"}, {"alias": "staging", "verify": "yes"}]},
    )
    with pytest.raises(ValidationError) as info:
        load_policy(three.home.root)
    assert len(info.value.problems) >= 2
    assert any("rules[0]" in p for p in info.value.problems)
    assert any("rules[1].verify" in p for p in info.value.problems)


# -- two processes move one alias ----------------------------------------------------------

MOVER = """
import sys, time
from pathlib import Path
import registry.store.catalog.history as history
from registry import Registry
first, second, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])

# Widen the window between reading the alias and writing it: without a lock that
# serialises movers, the other process would write in between and this move would
# record a stale previous target.
read_alias = history.lock_alias
def slow_read(*args, **kwargs):
    row = read_alias(*args, **kwargs)
    time.sleep(0.02)
    return row
history.lock_alias = slow_read

reg = Registry.open()
while not go.exists():
    time.sleep(0.005)
changed = 0
for i in range(rounds):
    changed += reg.set_alias(first if i % 2 == 0 else second, "prod").changed
reg.close()
print(changed)
"""


def test_two_processes_moving_one_alias(registry: Registry, tmp_path: Path) -> None:
    """Every move is recorded with the target the other process left: no lost update.

    Each process alternates between its own two versions, so with moves serialised
    every move changes the alias, and each recorded "previous" is the last target.
    """
    for seed in (1, 2, 3, 4):
        registry.push(write_lora(tmp_path / f"v{seed}", seed), name="x")
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rounds = 20
    movers = [
        subprocess.Popen(
            [sys.executable, "-c", MOVER, first, second, str(rounds), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for first, second in (("x@1", "x@2"), ("x@3", "x@4"))
    ]
    time.sleep(1.0)  # both are importing; release them together
    go.touch()
    changed = 0
    for mover in movers:
        out, err = mover.communicate(timeout=180)
        assert mover.returncode == 0, err
        changed += int(out.strip())
    history = registry.alias_history("x", "prod")
    assert changed == len(history) == 2 * rounds
    assert history[0].previous is None
    for before, after in itertools.pairwise(history):
        assert after.previous == before.version
    assert registry.get("x@prod").version == history[-1].version
    assert len(registry.log("x", actions=["alias"])) == changed
