"""Policies set at once by several admins (or processes) take turns: each ``policy-set``
event names the file it really replaced, so the audit log is one chain ending at the
policy in force."""

from __future__ import annotations

import hashlib
from pathlib import Path

from test_catalog import _run_threads

from registry import Registry
from registry.lifecycle.policy_file import POLICY_ACTION


def _policy(n: int) -> dict[str, object]:
    return {"version": 1, "rules": [{"alias": "prod", "evals": [{"metric": "m", "min": n / 100}]}]}


def test_concurrent_policy_sets_form_one_audited_chain(
    registry: Registry, hermetic_env: Path
) -> None:
    writers = 6

    def set_three(n: int) -> None:
        with Registry.open(hermetic_env) as own:  # a connection of its own
            for round_ in range(3):
                own.set_policy(_policy(n * 10 + round_))

    assert not _run_threads(writers, set_three)
    events = registry.log(actions=[POLICY_ACTION])
    assert len(events) == writers * 3
    # Each state of the file was replaced once: no two events name the same previous one.
    previous = [event.details["previous_sha256"] for event in events]
    assert len(set(previous)) == len(previous), previous
    current = hashlib.sha256((hermetic_env / "policy.json").read_bytes()).hexdigest()
    assert current == events[-1].details["sha256"]
    chain = [None, *(event.details["sha256"] for event in events[:-1])]
    assert previous == chain
