"""Policies set at once by several admins (or processes) take turns: each ``policy-set``
event names the file it really replaced, so the audit log is one chain ending at the
policy in force."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from registry import Registry
from registry.lifecycle.policy_file import POLICY_ACTION


def _policy(n: int) -> dict[str, object]:
    return {"version": 1, "rules": [{"alias": "prod", "evals": [{"metric": "m", "min": n / 100}]}]}


def test_concurrent_policy_sets_form_one_audited_chain(
    registry: Registry, hermetic_env: Path
) -> None:
    writers = 6
    barrier = threading.Barrier(writers)
    failures: list[BaseException] = []

    def set_one(n: int) -> None:
        try:
            with Registry.open(hermetic_env) as own:  # a connection of its own
                for round_ in range(3):
                    barrier.wait()
                    own.set_policy(_policy(n * 10 + round_))
        except BaseException as exc:  # raised in the test below
            failures.append(exc)

    threads = [threading.Thread(target=set_one, args=(n,)) for n in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
    events = registry.log(actions=[POLICY_ACTION])
    assert len(events) == writers * 3
    # Each state of the file was replaced once: no two events name the same previous one.
    previous = [event.details["previous_sha256"] for event in events]
    assert len(set(previous)) == len(previous), previous
    current = hashlib.sha256((hermetic_env / "policy.json").read_bytes()).hexdigest()
    assert current == events[-1].details["sha256"]
    chain = [None, *(event.details["sha256"] for event in events[:-1])]
    assert previous == chain
