"""The server under load (32 concurrent clients resolving, listing, recording evals, moving
aliases and pushing for a bounded time) and killed in the middle of a push."""

from __future__ import annotations

import random
import signal
import statistics
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import ServerStore
from support.handmade import write_adapter
from support.server import ServedRegistry, new_home, running_server, served_registry
from support.server_matrix import DEFAULT_BACKEND

from registry import Registry, ServerError

CLIENTS = 32
# The full run, on sqlite+local as a slow test (test_32_concurrent_clients_for_the_full_time).
SECONDS = 6.0
# In the default suite: the same 32 clients and checks for a short time, which every kind
# of operation still reaches (each client's first operation is fixed, so all five run
# whatever the machine's load).
QUICK_SECONDS = 1.0
# On the backends other than the default (run as slow tests): long enough for every kind
# of operation from every client, short enough to keep CI's time in bounds.
SLOW_BACKEND_SECONDS = 3.0
OPERATIONS = ("resolve", "list", "eval", "alias", "push")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_32_concurrent_clients(server_backend: ServerStore, tmp_path: Path) -> None:
    store = server_backend
    seconds = QUICK_SECONDS if store.backend == DEFAULT_BACKEND else SLOW_BACKEND_SECONDS
    with served_registry(
        tmp_path / "home", store.database_url, blob_url=store.blob_url, backend=store.backend
    ) as served:
        _load(served, tmp_path, seconds)


@pytest.mark.slow
def test_32_concurrent_clients_for_the_full_time(tmp_path: Path) -> None:
    with served_registry(tmp_path / "home", f"sqlite:///{tmp_path / 'catalog.db'}") as served:
        _load(served, tmp_path, SECONDS)


def _load(served: ServedRegistry, tmp_path: Path, seconds: float) -> None:
    setup = Registry.open(served.url, token=served.tokens["maintainer"])
    for index in range(4):
        setup.push(write_adapter(tmp_path / f"seed-{index}", seed=100 + index), name="loaded")
    setup.set_alias("loaded@1", "prod")
    setup.close()
    adapters = [write_adapter(tmp_path / f"new-{i}", seed=1000 + i) for i in range(CLIENTS * 4)]
    latencies: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    pushed: list[tuple[str, str, bool]] = []
    lock = threading.Lock()
    deadline = [0.0]

    def start_clock() -> None:
        deadline[0] = time.monotonic() + seconds

    # The clock starts when every client is open, so the bounded time is all requests.
    ready = threading.Barrier(CLIENTS, action=start_clock, timeout=60)

    def client(number: int) -> None:
        reg = Registry.open(served.url, token=served.tokens["maintainer"])
        rng = random.Random(number)
        mine = adapters[number * 4 : number * 4 + 4]
        first = True
        try:
            ready.wait()
            # The first operation runs even past the deadline (a thread scheduled late).
            while first or time.monotonic() < deadline[0]:
                if first:
                    op, first = OPERATIONS[number % len(OPERATIONS)], False
                else:
                    op = rng.choice(["resolve"] * 4 + ["list"] * 2 + ["eval", "alias", "push"])
                started = time.perf_counter()
                try:
                    if op == "resolve":
                        reg.get("loaded@prod" if rng.random() < 0.5 else "loaded")
                    elif op == "list":
                        reg.list(name="loaded", limit=50)
                    elif op == "eval":
                        reg.record_eval(f"loaded@{rng.randint(1, 4)}", {"score": rng.random()})
                    elif op == "alias":
                        reg.set_alias(f"loaded@{rng.randint(1, 4)}", "prod")
                    elif mine:
                        result = reg.push(mine.pop(), name="loaded")
                        with lock:
                            pushed.append((result.version.version, result.version.digest,
                                           result.created))  # fmt: skip
                    else:
                        continue
                except Exception as exc:  # every failure is counted, none expected
                    with lock:
                        errors.append(f"{op}: {type(exc).__name__}: {exc}")
                    continue
                with lock:
                    latencies[op].append(time.perf_counter() - started)
        finally:
            reg.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    summary = {
        op: (len(v), statistics.median(v) * 1000, _percentile(v, 0.99) * 1000)
        for op, v in sorted(latencies.items())
    }
    print("\nop        count  p50 ms  p99 ms")
    for op, (count, p50, p99) in summary.items():
        print(f"{op:8}  {count:5}  {p50:6.1f}  {p99:6.1f}")
    assert sum(count for count, _, _ in summary.values()) > CLIENTS
    assert set(summary) == {"alias", "eval", "list", "push", "resolve"}
    # Every push is there exactly once, numbered without gaps or duplicates.
    with Registry.open(served.home, database_url=served.database_url) as local:
        stored = local.list(name="loaded")
    versions = [v.version for v in stored]
    assert len(versions) == len(set(versions)) == 4 + len(pushed)
    assert sorted(int(v) for v in versions) == list(range(1, len(versions) + 1))
    assert {d for _, d, _ in pushed} <= {v.digest for v in stored}
    assert all(created for _, _, created in pushed)
    assert len({v.digest for v in stored}) == len(stored)
    # ... and so is every file of every version, wherever the blobs are.
    with Registry.open(served.home, database_url=served.database_url) as local:
        held = set(local.blobs.iter_digests())
        files = {f.sha256 for v in local.list(name="loaded") for f in local.get(v.ref).files}
    assert files <= held


def test_a_server_killed_mid_push_leaves_no_version_and_the_retry_completes(
    server_backend: ServerStore, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    database = server_backend.database_url
    with new_home(home, database, server_backend.blob_url) as local:
        token = local.create_token("w", "writer").secret
    directory = write_adapter(tmp_path / "crash-lora", seed=5)
    env = {"ADAPTERS_DATABASE_URL": database, "ADAPTERS_FAULT_POINT": "catalog.insert-version"}
    with running_server(home, env) as server:
        client = Registry.open(server.url, token=token)
        with pytest.raises(ServerError):  # the connection drops: the server is gone
            client.push(directory)
        client.close()
        assert server.process.wait(30) == -signal.SIGKILL
    with Registry.open(home, database_url=database) as local:
        assert local.list() == []
        assert [e.action for e in local.log()] == ["token-create"]
    with running_server(home, {"ADAPTERS_DATABASE_URL": database}) as server:
        client = Registry.open(server.url, token=token)
        result = client.push(directory)
        assert result.created and client.verify(result.version.ref).ok
        assert [v.ref for v in client.list()] == ["crash-lora@1"]
        client.close()
