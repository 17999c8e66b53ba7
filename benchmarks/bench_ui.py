"""Web UI pages at 100,000 versions: median render time per page, over HTTP from a real
``adapters server`` on 127.0.0.1 (SQLite), beside the JSON API's first page of versions.

    python benchmarks/bench_ui.py [--versions 100000] [--repeat 15]

The catalog is filled as benchmarks/bench_catalog.py fills it (bulk inserts, no blobs).
Each page is fetched once to warm up, then ``--repeat`` times; the median wall-clock
milliseconds of the whole request (server render plus a loopback round trip) are printed,
with the machine's load (``uptime``). The target is under 300 ms per page.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    import httpx2
    from bench_catalog import HOT_NAME, LIST_BASE, fill
    from support.server import running_server

    from registry import Registry

    work = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    home = work / "home"
    url = f"sqlite:///{home}/catalog.db"
    try:
        registry = Registry.open(home, create=True, database_url=url)
        fill(registry.catalog.engine, args.versions)
        admin = registry.create_token("bench", "admin").secret
        team = registry.create_token("bench-team", "reader", namespace="team-0003").secret
        registry.close()
        env = {"ADAPTERS_DATABASE_URL": url}
        with running_server(home, env) as server:
            pages = {
                "list, first page": "/ui/",
                "list, page 1000": "/ui/?page=1000",
                "list, search": "/ui/?q=team-0500",
                "list, search matching every version": "/ui/?q=adapter",
                "list, search of two characters": "/ui/?q=zq",
                "list, base + eval threshold": f"/ui/?base={LIST_BASE}&metric=accuracy&min=0.9",
                "list, alias": "/ui/?alias=prod",
                "list, yanked": "/ui/?status=yanked",
                "adapter (10k versions)": f"/ui/adapter?name={HOT_NAME}",
                "version": "/ui/version?ref=team-0003/adapter@9.9",
                "lineage": "/ui/lineage?ref=team-0003/adapter@9.9",
                "base model": f"/ui/base?name={LIST_BASE}",
                "bases": "/ui/bases",
                "audit log": "/ui/audit",
                "audit log, by name": "/ui/audit?name=team-0003/adapter",
            }
            api = {"JSON API first page": "/api/v1/versions?page_size=50"}
            rows = []
            for token, label in ((admin, ""), (team, " [namespaced]")):
                client = httpx2.Client(base_url=server.url, timeout=120)
                signin = client.get("/ui/signin").text
                csrf = signin.split('name="csrf" value="')[1].split('"')[0]
                client.post("/ui/signin", data={"csrf": csrf, "token": token})
                chosen = pages if not label else {k: pages[k] for k in
                                                  ("list, first page", "list, search",
                                                   "audit log", "version")}  # fmt: skip
                for name, path in chosen.items():
                    rows.append((name + label, _median(client, path, args.repeat)))
                if not label:
                    headers = {"Authorization": f"Bearer {token}"}
                    for name, path in api.items():
                        rows.append((name, _median(client, path, args.repeat, headers)))
        load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        print(f"{args.versions} versions, median of {args.repeat}; {load}")
        for name, ms in rows:
            print(f"  {name:<40} {ms:8.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _median(client: object, path: str, repeat: int, headers: dict[str, str] | None = None) -> float:
    get = client.get  # type: ignore[attr-defined]
    first = get(path, headers=headers)
    if first.status_code != 200:
        raise SystemExit(f"{path}: {first.status_code} {first.text[:300]}")
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        get(path, headers=headers)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
