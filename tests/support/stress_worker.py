"""One writer process of the stress and concurrency tests (run as a module, not imported).

    PYTHONPATH=.:tests python -m support.stress_worker HOME DATABASE_URL WORKER PLAN.json GO_FILE

``PLAN.json`` maps the worker number to its operations, each ``["push", DIR, NAME]``,
``["pushv", DIR, NAME, VERSION]`` (an explicit version; a clean refusal is recorded),
``["eval", NAME]``, ``["alias", NAME, ALIAS]`` or ``["gc"]``. The worker waits for
``GO_FILE`` so that every process starts at once, then prints one JSON object: the
versions it pushed and how many of each operation succeeded. Evals and alias moves
target a random version this worker pushed under that name. It never imports torch
or peft: the adapters were written beforehand.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any


def main(argv: list[str]) -> int:
    home, url, worker, plan_file, go_file = argv
    from registry import Registry
    from registry.errors import ConflictError

    operations: list[list[str]] = json.loads(Path(plan_file).read_text())[worker]
    rng = random.Random(int(worker))
    registry = Registry.open(home, database_url=url)
    pushed: list[dict[str, Any]] = []
    mine: dict[str, list[str]] = {}
    refused: list[str] = []
    done = {"pushv": 0, "push": 0, "eval": 0, "alias": 0, "gc": 0, "conflicts": 0, "gc_deleted": 0}
    deadline = time.monotonic() + 60
    while not Path(go_file).exists():
        if time.monotonic() > deadline:
            raise SystemExit("no go signal")
        time.sleep(0.005)
    started = time.monotonic()
    for op in operations:
        kind = op[0]
        if kind == "push":
            for _attempt in range(5):
                try:
                    result = registry.push(op[1], name=op[2], evals={"accuracy": rng.random()})
                    break
                except ConflictError:
                    done["conflicts"] += 1  # one clean error; the caller may retry
            else:
                raise SystemExit(f"push of {op[1]} kept conflicting")
            version = result.version
            pushed.append(
                {
                    "name": version.name,
                    "version": version.version,
                    "digest": version.digest,
                    "created": result.created,
                }
            )
            mine.setdefault(version.name, []).append(version.version)
        elif kind == "pushv":  # an explicit version: win it, or be refused cleanly
            try:
                result = registry.push(op[1], name=op[2], version=op[3])
            except ConflictError as exc:
                refused.append(str(exc))
                continue
            pushed.append(
                {
                    "name": result.version.name,
                    "version": result.version.version,
                    "digest": result.version.digest,
                    "created": result.created,
                }
            )
        elif kind == "eval":
            versions = mine.get(op[1])
            if not versions:
                continue
            registry.record_eval(f"{op[1]}@{rng.choice(versions)}", {"accuracy": rng.random()})
        elif kind == "alias":
            versions = mine.get(op[1])
            if not versions:
                continue
            registry.set_alias(f"{op[1]}@{rng.choice(versions)}", op[2])
        elif kind == "gc":
            done["gc_deleted"] += len(registry.gc().blobs)
        done[kind] += 1
    elapsed = time.monotonic() - started
    registry.close()
    report = {"worker": worker, "pushed": pushed, "refused": refused, "done": done}
    print(json.dumps({**report, "seconds": elapsed}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
