"""The registry server against an MLflow tracking server, on this machine, both on SQLite.

MLflow is not a dependency: install it in a virtual environment of its own and name its
``mlflow`` command::

    python -m venv /tmp/mlflow-venv && /tmp/mlflow-venv/bin/pip install mlflow
    PYTHONPATH=. python benchmarks/bench_server.py --mlflow /tmp/mlflow-venv/bin/mlflow

Both servers are driven over plain HTTP with the same client (httpx), one request after
another: register a version (ours: the files and the push in one request, as the client
sends a small push, and file by file as it sends a large one; MLflow: create a model
version), set an alias, resolve an alias, list 1,000 versions. Resolve and list are timed
twice: repeated on an unchanged catalog (ours answers from what it kept), and each right
after a write (an eval on another version: ours must read the catalog again). Medians of
``--repeat`` runs, and the ratio ours / MLflow. Then 32 concurrent clients resolve an
alias on ours for a few seconds (p50 / p99), each client connected and warmed up before
the clock starts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.handmade import write_adapter  # noqa: E402
from support.server import free_port, served_registry  # noqa: E402

from registry import Registry  # noqa: E402

MLFLOW_API = "/api/2.0/mlflow"


def _median_ms(action: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _median_after(write: Callable[[], object], action: Callable[[], object], repeat: int) -> float:
    """The median time of ``action`` run right after an untimed ``write``."""
    times = []
    for _ in range(repeat):
        write()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-server-"))
    os.environ["ADAPTERS_CACHE_DIR"] = str(work / "cache")
    try:
        _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> None:
    adapters = [write_adapter(work / "src" / f"a{i}", seed=i) for i in range(2 * args.repeat + 1)]
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
            pending = iter(adapters)

            def register_ours() -> None:
                directory = next(pending)
                datas = {p.name: p.read_bytes() for p in sorted(directory.iterdir())}
                header = json.dumps({
                    "push": {"files": {k: hashlib.sha256(v).hexdigest()
                                       for k, v in datas.items()}, "name": "bench"},
                    "sizes": {k: len(v) for k, v in datas.items()},
                }).encode()  # fmt: skip
                ours.post("/api/v1/push/bundle", content=header + b"".join(datas.values()),
                          params={"header_bytes": len(header)}).raise_for_status()  # fmt: skip

            def register_ours_file_by_file() -> None:
                directory = next(pending)
                files = {}
                for path in sorted(directory.iterdir()):
                    data = path.read_bytes()
                    sha = hashlib.sha256(data).hexdigest()
                    ours.put(f"/api/v1/uploads/{sha}", content=data).raise_for_status()
                    files[path.name] = sha
                ours.post("/api/v1/push", json={"files": files, "name": "bench"}).raise_for_status()

            def register_theirs() -> None:
                theirs.post(f"{MLFLOW_API}/model-versions/create",
                            json={"name": "bench", "source": "s3://bucket/model"}
                            ).raise_for_status()  # fmt: skip

            register_ours()
            register_theirs()
            results["register a version"] = (
                _median_ms(register_ours, args.repeat), _median_ms(register_theirs, args.repeat)
            )
            mlflow_register = results["register a version"][1]
            results["register, file by file (3 requests)"] = (
                _median_ms(register_ours_file_by_file, args.repeat), mlflow_register
            )
            results["set an alias"] = (
                _median_ms(lambda: ours.post("/api/v1/aliases", json={
                    "ref": "bench@1", "alias": "prod"}).raise_for_status(), args.repeat),
                _median_ms(lambda: theirs.post(f"{MLFLOW_API}/registered-models/alias", json={
                    "name": "bench", "alias": "prod", "version": "1"}).raise_for_status(),
                    args.repeat),
            )  # fmt: skip
            results["resolve an alias"] = (
                _median_ms(lambda: ours.get("/api/v1/resolve", params={
                    "ref": "bench@prod"}).raise_for_status(), args.repeat),
                _median_ms(lambda: theirs.get(f"{MLFLOW_API}/registered-models/alias", params={
                    "name": "bench", "alias": "prod"}).raise_for_status(), args.repeat),
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
            results[f"list {args.versions} versions"] = (
                _median_ms(list_ours, reps), _median_ms(list_theirs, reps)
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

            results["resolve an alias, after a write"] = (
                _median_after(write_ours, resolve_ours, args.repeat),
                _median_after(write_theirs, resolve_theirs, args.repeat),
            )
            results[f"list {args.versions} versions, after a write"] = (
                _median_after(write_ours, list_ours, reps),
                _median_after(write_theirs, list_theirs, reps),
            )
            p50, p99, count = _concurrent_resolves(served.url, served.tokens["reader"])
    finally:
        mlflow.terminate()
        mlflow.wait(30)
    print(f"load: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} (1, 5 min), "
          f"{os.cpu_count()} cores")  # fmt: skip
    print("| operation | ours (median ms) | MLflow (median ms) | ours / MLflow |")
    print("|---|---|---|---|")
    for name, (a, b) in results.items():
        print(f"| {name} | {a:.1f} | {b:.1f} | {a / b:.2f} |")
    print(f"\n32 concurrent clients resolving an alias on ours: {count} requests, "
          f"p50 {p50:.1f} ms, p99 {p99:.1f} ms")


def _concurrent_resolves(url: str, token: str, seconds: float = 5.0) -> tuple[float, float, int]:
    latencies: list[float] = []
    lock = threading.Lock()
    ready = threading.Barrier(33)
    deadline = 0.0

    def client() -> None:
        with httpx2.Client(base_url=url, timeout=60,
                           headers={"Authorization": f"Bearer {token}"}) as http:  # fmt: skip
            http.get("/api/v1/resolve", params={"ref": "bench@prod"}).raise_for_status()
            ready.wait()  # connected and warmed up: the clock starts for all at once
            ready.wait()
            while time.monotonic() < deadline:
                started = time.perf_counter()
                http.get("/api/v1/resolve", params={"ref": "bench@prod"}).raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=client) for _ in range(32)]
    for thread in threads:
        thread.start()
    ready.wait()
    deadline = time.monotonic() + seconds
    ready.wait()
    for thread in threads:
        thread.join()
    ordered = sorted(latencies)
    return (statistics.median(ordered) * 1000,
            ordered[int(0.99 * (len(ordered) - 1))] * 1000, len(ordered))  # fmt: skip


if __name__ == "__main__":
    main()
