"""Register a version (``POST /push`` of staged uploads) on this checkout's server against
an older commit's, the two servers alternating sample by sample in one run.

    PYTHONPATH=. python benchmarks/bench_register_ab.py --old main   # --quick

Each side is a real ``adapters server`` process on SQLite and local blobs over a new home
of its own. Per sample, untimed: the adapter's files are uploaded (``PUT /uploads``);
timed: the ``POST /push`` that registers them, and, for information, the uploads before
it and two resolves after it (the first reads the catalog, the second is answered from
what the server keeps). Medians, and the ratio new / old; the load average is printed at both ends.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.handmade import write_adapter  # noqa: E402
from support.server import free_port, stage_uploads  # noqa: E402

from registry import Registry  # noqa: E402


@contextmanager
def _server(source: Path, home: Path) -> Iterator[tuple[str, str]]:
    """A server running the code at ``source`` over a new ``home``: (url, writer token)."""
    with Registry.open(home, create=True) as local:
        token = local.create_token("bench", "writer").secret
    port = free_port()
    log = (home.parent / f"{home.name}.log").open("wb")
    env = {**os.environ, "PYTHONPATH": str(source)}
    process = subprocess.Popen(
        [sys.executable, "-m", "registry.cli", "--registry", str(home), "server",
         "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=source,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server at {source} did not start")
            time.sleep(0.1)
        yield url, token
    finally:
        process.terminate()
        process.wait(30)
        log.close()


def _sample(http: httpx2.Client, directory: Path) -> tuple[float, ...]:
    """ms of: the uploads, the push, a resolve right after it, and one more resolve."""
    started = time.perf_counter()
    files = stage_uploads(http, directory)
    marks = [started, time.perf_counter()]
    http.post("/api/v1/push", json={"files": files, "name": "bench"}).raise_for_status()
    marks.append(time.perf_counter())
    for _ in range(2):
        http.get("/api/v1/resolve", params={"ref": "bench@1"}).raise_for_status()
        marks.append(time.perf_counter())
    return tuple((end - start) * 1000 for start, end in itertools.pairwise(marks))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", default="main", help="the commit to compare against")
    parser.add_argument("--repeat", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="30 samples a side")
    args = parser.parse_args()
    repeat = 30 if args.quick else args.repeat
    print("load average at start:", os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="bench-register-ab-") as raw:
        work = Path(raw)
        old = work / "old"
        old.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.old], check=True, capture_output=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        adapters = [write_adapter(work / f"a{i}", seed=1000 + i) for i in range(2 * repeat + 4)]
        pending = iter(adapters)
        with (
            _server(old, work / "home-old") as (old_url, old_token),
            _server(ROOT, work / "home-new") as (new_url, new_token),
        ):
            sides = {
                "old": httpx2.Client(base_url=old_url, timeout=60,
                                     headers={"Authorization": f"Bearer {old_token}"}),
                "new": httpx2.Client(base_url=new_url, timeout=60,
                                     headers={"Authorization": f"Bearer {new_token}"}),
            }  # fmt: skip
            for http in sides.values():  # warm up: the first push creates the name
                _sample(http, next(pending))
            times: dict[str, list[tuple[float, ...]]] = {"old": [], "new": []}
            for index in range(repeat):
                order = ("old", "new") if index % 2 else ("new", "old")
                for side in order:
                    times[side].append(_sample(sides[side], next(pending)))
    print("load average at end:", os.getloadavg())
    for column, what in (
        (1, "POST /push (timed register)"),
        (0, "the uploads before it"),
        (2, "a resolve right after the push"),
        (3, "a resolve of the kept answer"),
    ):
        old_ms = statistics.median(t[column] for t in times["old"])
        new_ms = statistics.median(t[column] for t in times["new"])
        print(f"{what}: old {old_ms:.2f} ms, new {new_ms:.2f} ms, new/old {new_ms / old_ms:.2f}")


if __name__ == "__main__":
    main()
