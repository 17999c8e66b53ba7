"""The registry server against an MLflow tracking server, on this machine, both on SQLite.

MLflow is not a dependency: install it in a virtual environment of its own and name its
``mlflow`` command::

    python -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow
    PYTHONPATH=. python benchmarks/bench_server.py --mlflow /tmp/mlflow-venv/bin/mlflow

Both servers are driven over plain HTTP with the same client (httpx), one request after
another, the two sides alternating sample by sample so that the machine's load falls on
both alike: register a version (MLflow: create a model version, a pointer to artifacts
stored elsewhere; ours, like for like: ``POST /push`` of files already uploaded, and for
information the whole push with its uploads, in one request as the client sends a small
push and file by file as it sends a large one), set an alias, resolve an alias, list 1,000
versions. Resolve and list are timed twice: repeated on an unchanged catalog (ours answers
from what it kept), and each right after a write (an eval on another version: ours must
read the catalog again). Medians of ``--repeat`` runs, and the ratio ours / MLflow.

Then 32 concurrent connections resolve an alias on ours for a few seconds (p50 / p99),
each connected and warmed up before the clock starts. They are driven by ``--processes``
load-generator processes, each an asyncio loop over raw keep-alive sockets, so the
generator does not serialise 32 clients on one Python interpreter's lock.

Measuring starts once the machine is quiet: MLflow's background workers start after it
answers (``_settle``).

``--quick``: fewer runs, 200 versions to list and 2 s of load, to re-check on an idle
machine.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.handmade import write_adapter  # noqa: E402
from support.server import bundle_parts, free_port, served_registry, stage_uploads  # noqa: E402

from registry import Registry  # noqa: E402

MLFLOW_API = "/api/2.0/mlflow"


Side = tuple[Callable[[], object], Callable[[], object] | None]  # (untimed setup, timed)


def _timed(side: Side) -> float:
    before, action = side
    if before is not None:
        before()
    started = time.perf_counter()
    action()  # type: ignore[misc]
    return time.perf_counter() - started


def _paired(ours: Side, theirs: Side, repeat: int) -> tuple[float, float]:
    """Median ms of each side, alternating the two sample by sample (who goes first too)."""
    a: list[float] = []
    b: list[float] = []
    for index in range(repeat):
        if index % 2:
            b.append(_timed(theirs))
            a.append(_timed(ours))
        else:
            a.append(_timed(ours))
            b.append(_timed(theirs))
    return statistics.median(a) * 1000, statistics.median(b) * 1000


def _plain(action: Callable[[], object]) -> Side:
    return (lambda: None, action)


def _settle(limit: float = 120.0) -> float:
    """Wait (at most ``limit`` s) until the CPUs are nine tenths idle over a second: MLflow
    answers ``/health`` while the eight worker processes it starts are still importing,
    for some twenty seconds of CPU; measured meanwhile, either side pays for it. The
    seconds waited (none where ``/proc/stat`` is not there to read)."""
    started = time.monotonic()
    if not Path("/proc/stat").exists():
        return 0.0
    while time.monotonic() - started < limit and _idle_share(1.0) < 0.9:
        pass
    return time.monotonic() - started


def _idle_share(seconds: float) -> float:
    def sample() -> tuple[int, int]:
        ticks = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return ticks[3] + ticks[4], sum(ticks)  # idle and iowait, of all

    idle, total = sample()
    time.sleep(seconds)
    idle_after, total_after = sample()
    return (idle_after - idle) / max(1, total_after - total)


def _start_mlflow(mlflow: str, work: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [mlflow, "server", "--backend-store-uri", f"sqlite:///{work / 'mlflow.db'}",
         "--default-artifact-root", str(work / "artifacts"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx2.get(f"{url}/health", timeout=2).status_code == 200:
                return process, url
        except httpx2.HTTPError:
            time.sleep(0.5)
    process.kill()
    raise RuntimeError("MLflow did not start")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mlflow", required=True, help="the mlflow command of its venv")
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=5.0, help="of 32-connection load")
    parser.add_argument("--processes", type=int, default=2, help="load-generator processes")
    parser.add_argument("--quick", action="store_true", help="10 runs, 200 versions, 2 s")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.versions, args.seconds = 10, 200, 2.0
    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    os.environ["ADAPTERS_CACHE_DIR"] = str(work / "cache")
    try:
        _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> None:
    adapters = [write_adapter(work / "src" / f"a{i}", seed=i) for i in range(3 * args.repeat + 1)]
    # 1,000 versions to list, stored directly in the server's registry beforehand.
    home = work / "home"
    database = f"sqlite:///{work / 'catalog.db'}"
    with Registry.open(home, create=True, database_url=database) as local:
        for i in range(args.versions):
            local.push(write_adapter(work / "many" / f"m{i}", seed=10_000 + i), name="many")
        shutil.rmtree(work / "many")
    mlflow, mlflow_url = _start_mlflow(args.mlflow, work)
    results: dict[str, tuple[float, float]] = {}
    try:
        with served_registry(home, database) as served:
            auth = {"Authorization": f"Bearer {served.tokens['admin']}"}
            ours = httpx2.Client(base_url=served.url, timeout=60, headers=auth)
            theirs = httpx2.Client(base_url=mlflow_url, timeout=60)
            theirs.post(f"{MLFLOW_API}/registered-models/create", json={"name": "bench"})
            theirs.post(f"{MLFLOW_API}/registered-models/create", json={"name": "many"})
            for _ in range(args.versions):
                theirs.post(f"{MLFLOW_API}/model-versions/create",
                            json={"name": "many", "source": "s3://bucket/model"})  # fmt: skip
            quiet = _settle()
            print(f"waited {quiet:.0f} s for the machine to be quiet before measuring")
            pending = iter(adapters)

            def register_ours() -> None:
                header, payload = bundle_parts(next(pending), "bench")
                ours.post("/api/v1/push/bundle", content=header + payload,
                          params={"header_bytes": len(header)}).raise_for_status()  # fmt: skip

            def register_ours_file_by_file() -> None:
                files = stage_uploads(ours, next(pending))
                ours.post("/api/v1/push", json={"files": files, "name": "bench"}).raise_for_status()

            def register_theirs() -> None:
                theirs.post(f"{MLFLOW_API}/model-versions/create",
                            json={"name": "bench", "source": "s3://bucket/model"}
                            ).raise_for_status()  # fmt: skip

            staged: list[dict[str, str]] = []

            def stage_ours() -> None:
                # Untimed: the files are uploaded (hashed and fsynced by the server) first.
                staged.append(stage_uploads(ours, next(pending)))

            def register_ours_uploaded() -> None:
                ours.post("/api/v1/push", json={"files": staged.pop(), "name": "bench"}
                          ).raise_for_status()  # fmt: skip

            register_ours()
            register_theirs()
            results["register a version (files already uploaded: `POST /push`)"] = _paired(
                (stage_ours, register_ours_uploaded), _plain(register_theirs), args.repeat
            )
            results["register with its upload, one request (`POST /push/bundle`)"] = _paired(
                _plain(register_ours), _plain(register_theirs), args.repeat
            )
            results["register with its upload, file by file (3 requests)"] = _paired(
                _plain(register_ours_file_by_file), _plain(register_theirs), args.repeat
            )
            results["set an alias"] = _paired(
                _plain(lambda: ours.post("/api/v1/aliases", json={
                    "ref": "bench@1", "alias": "prod"}).raise_for_status()),
                _plain(lambda: theirs.post(f"{MLFLOW_API}/registered-models/alias", json={
                    "name": "bench", "alias": "prod", "version": "1"}).raise_for_status()),
                args.repeat,
            )  # fmt: skip
            results["resolve an alias"] = _paired(
                _plain(lambda: ours.get("/api/v1/resolve", params={
                    "ref": "bench@prod"}).raise_for_status()),
                _plain(lambda: theirs.get(f"{MLFLOW_API}/registered-models/alias", params={
                    "name": "bench", "alias": "prod"}).raise_for_status()),
                args.repeat,
            )  # fmt: skip

            def list_ours() -> None:
                body = ours.get("/api/v1/versions", params={"name": "many",
                                                            "page_size": 1000}).json()  # fmt: skip
                assert len(body["items"]) == args.versions

            def list_theirs() -> None:
                body = theirs.get(f"{MLFLOW_API}/model-versions/search", params={
                    "filter": "name='many'", "max_results": 1000}).json()  # fmt: skip
                assert len(body["model_versions"]) == args.versions

            reps = max(5, args.repeat // 3)
            results[f"list {args.versions} versions"] = _paired(
                _plain(list_ours), _plain(list_theirs), reps
            )

            def write_ours() -> None:
                ours.post("/api/v1/evals", json={"ref": "bench@2", "scores": {"x": 0.5}}
                          ).raise_for_status()  # fmt: skip

            def write_theirs() -> None:
                theirs.post(f"{MLFLOW_API}/model-versions/set-tag", json={
                    "name": "bench", "version": "2", "key": "x", "value": "0.5"}
                    ).raise_for_status()  # fmt: skip

            def resolve_ours() -> None:
                ours.get("/api/v1/resolve", params={"ref": "bench@prod"}).raise_for_status()

            def resolve_theirs() -> None:
                theirs.get(f"{MLFLOW_API}/registered-models/alias", params={
                    "name": "bench", "alias": "prod"}).raise_for_status()  # fmt: skip

            results["resolve an alias, after a write"] = _paired(
                (write_ours, resolve_ours), (write_theirs, resolve_theirs), args.repeat
            )
            results[f"list {args.versions} versions, after a write"] = _paired(
                (write_ours, list_ours), (write_theirs, list_theirs), reps
            )
            load = os.getloadavg()
            p50, p99, count = _concurrent_resolves(
                served.url, served.tokens["reader"], args.seconds, args.processes
            )
    finally:
        mlflow.terminate()
        mlflow.wait(30)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min), "
          f"{os.cpu_count()} cores")  # fmt: skip
    print("| operation | ours (median ms) | MLflow (median ms) | ours / MLflow |")
    print("|---|---|---|---|")
    for name, (a, b) in results.items():
        print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    print(f"\n32 concurrent connections resolving an alias on ours ({args.processes} "
          f"load-generator processes, load {load[0]:.2f} before): {count} requests in "
          f"{args.seconds:g} s, p50 {p50:.1f} ms, p99 {p99:.1f} ms")  # fmt: skip


def _concurrent_resolves(
    url: str, token: str, seconds: float, processes: int, connections: int = 32
) -> tuple[float, float, int]:
    """p50 and p99 ms of resolves over ``connections`` keep-alive connections shared out
    among ``processes`` load generators, and how many were served in ``seconds``."""
    context = multiprocessing.get_context("spawn")
    ready = context.Barrier(processes + 1)
    results = context.Queue()
    shares = [connections // processes + (i < connections % processes) for i in range(processes)]
    workers = [
        context.Process(target=_generate, args=(url, token, share, seconds, ready, results))
        for share in shares
    ]
    for worker in workers:
        worker.start()
    ready.wait(timeout=120)  # every connection open and warmed up: the clock starts for all
    latencies = sorted(t for _ in workers for t in results.get(timeout=seconds + 120))
    for worker in workers:
        worker.join()
    return (statistics.median(latencies) * 1000,
            latencies[int(0.99 * (len(latencies) - 1))] * 1000, len(latencies))  # fmt: skip


def _generate(url: str, token: str, count: int, seconds: float, ready: Any, results: Any) -> None:
    results.put(asyncio.run(_connections(url, token, count, seconds, ready)))


async def _connections(url: str, token: str, count: int, seconds: float, ready: Any) -> list[float]:
    parts = urlsplit(url)
    request = (
        f"GET /api/v1/resolve?ref=bench%40prod HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Authorization: Bearer {token}\r\n\r\n"
    ).encode()
    streams = [await asyncio.open_connection(parts.hostname, parts.port) for _ in range(count)]
    for reader, writer in streams:
        await _exchange(reader, writer, request)
    await asyncio.to_thread(ready.wait, 120)
    deadline = time.monotonic() + seconds
    latencies: list[float] = []

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while time.monotonic() < deadline:
            started = time.perf_counter()
            await _exchange(reader, writer, request)
            latencies.append(time.perf_counter() - started)
        writer.close()

    await asyncio.gather(*(client(r, w) for r, w in streams))
    return latencies


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> None:
    """One request on a keep-alive connection, its whole response read; not a 200 raises."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"resolve answered {head.splitlines()[0]!r}")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)


if __name__ == "__main__":
    main()
