"""What re-hashing a staged upload before ``POST /push`` links it (``intact_upload`` in
``store/verified_files``) adds to registering a version.

Against a real ``adapters server`` on this machine, sample by sample in one run: (a) the
register row of ``bench_server.py``, ``POST /push`` of files already uploaded (a new
version each time, the re-check included), and (b) the re-check alone on the same staged
files. Reported: median of each and (b) / (a), the share of the register time the check
takes. Then, for large files, the re-check of one staged file against the ``PUT`` that
staged it (hashing as it streamed in), alternating likewise. Load average is printed.

    PYTHONPATH=. python benchmarks/bench_staged_recheck.py [--quick]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx2

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.handmade import write_adapter  # noqa: E402
from support.server import served_registry  # noqa: E402

from registry.store.verified_files import STAGED_UPLOADS, intact_upload  # noqa: E402

API = "/api/v1"


def _stage(http: httpx2.Client, data: bytes) -> str:
    sha = hashlib.sha256(data).hexdigest()
    http.put(f"{API}/uploads/{sha}", content=data).raise_for_status()
    return sha


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--quick", action="store_true", help="10 runs, one large size")
    args = parser.parse_args()
    repeat = 10 if args.quick else args.repeat
    sizes = [64 << 20] if args.quick else [16 << 20, 256 << 20]
    print("load average before:", " ".join(f"{x:.2f}" for x in os.getloadavg()))
    with tempfile.TemporaryDirectory() as work_text:
        work = Path(work_text)
        with served_registry(work / "home", f"sqlite:///{work / 'c.db'}") as served:
            uploads = served.home / "tmp" / STAGED_UPLOADS
            auth = {"Authorization": f"Bearer {served.tokens['writer']}"}
            with httpx2.Client(base_url=served.url, headers=auth, timeout=600) as http:
                directory = write_adapter(work / "adapter", seed=1)
                files = {p.name: _stage(http, p.read_bytes()) for p in directory.iterdir()}
                register, check = [], []
                for index in range(repeat + 2):
                    started = time.perf_counter()
                    reply = http.post(f"{API}/push", json={"files": files, "name": "bench",
                                                           "version": str(index + 1)})  # fmt: skip
                    took = time.perf_counter() - started
                    reply.raise_for_status()
                    started = time.perf_counter()
                    for sha in files.values():
                        intact_upload(uploads, sha)
                    checked = time.perf_counter() - started
                    if index >= 2:  # the first two warm up
                        register.append(took)
                        check.append(checked)
                a, b = statistics.median(register) * 1000, statistics.median(check) * 1000
                print(f"register (POST /push, {len(files)} small files): {a:.2f} ms median")
                print(f"re-check of its staged files: {b:.3f} ms median; share {b / a:.3f}")
                for size in sizes:
                    puts, checks = [], []
                    for _ in range(max(3, repeat // 4)):
                        data = os.urandom(size)
                        started = time.perf_counter()
                        sha = _stage(http, data)
                        puts.append(time.perf_counter() - started)
                        started = time.perf_counter()
                        intact_upload(uploads, sha)
                        checks.append(time.perf_counter() - started)
                        (uploads / sha).unlink()
                    p, c = statistics.median(puts) * 1000, statistics.median(checks) * 1000
                    print(f"{size >> 20} MiB: PUT {p:.0f} ms, re-check {c:.0f} ms, "
                          f"ratio {c / p:.3f}")  # fmt: skip
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
