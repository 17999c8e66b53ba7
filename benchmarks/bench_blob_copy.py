"""`blobs copy` of a store of many small blobs and a few large ones, to and from S3 (a
SeaweedFS server on 127.0.0.1), against the previous way: one blob at a time, the target
asked about each blob before it is copied.

    python benchmarks/bench_blob_copy.py [--small 2000] [--large 2] [--large-mb 40] [--repeat 3]
    python benchmarks/bench_blob_copy.py --quick     # 400 small, 2 x 10 MiB, 3 rounds

Side by side in one run, medians of ``--repeat`` rounds in which the compared rows take
turns (a change in the machine's load touches them alike):

- local -> S3 into an empty prefix; S3 -> a new local directory;
- a resumed copy that finds every blob there already (local -> S3).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def sequential_copy(source: Any, target: Any, staging: Path) -> None:
    """The previous algorithm: a look-up in the target per blob, then a copy, in turn."""
    from registry.progress import NoProgress
    from registry.store.blob_copy import _copy_one

    for sha256, size in sorted(source.iter_sizes()):
        if target.size(sha256) == size:
            continue
        _copy_one(source, target, sha256, staging, NoProgress())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--large", type=int, default=2)
    parser.add_argument("--large-mb", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.small, args.large, args.large_mb = 400, 2, 10

    from support.s3_server import BUCKET, start_server

    from registry.store.blob_cache import BlobCache
    from registry.store.blob_copy import copy_blobs
    from registry.store.blobs import BlobStore
    from registry.store.object_blobs import ObjectBlobStore

    server = start_server()
    work = Path(tempfile.mkdtemp(prefix="bench-copy-"))
    try:
        os.environ.update(server.env)
        local = BlobStore(work / "local")
        for i in range(args.small):
            local.put_bytes(os.urandom(200) + str(i).encode())
        for _ in range(args.large):
            local.put_bytes(os.urandom(args.large_mb * 1024**2))
        staging = work / "staging"
        staging.mkdir()
        cache = BlobCache(work / "cache")

        def s3(prefix: str) -> ObjectBlobStore:
            return ObjectBlobStore(f"s3://{BUCKET}/{prefix}", cache)

        full = s3("full")
        copy_blobs(local, full, staging)  # the resumed rows' target
        fresh: dict[str, Any] = {}

        def new_prefix(key: str) -> Callable[[], None]:
            def before() -> None:
                fresh[key] = s3(f"p-{uuid.uuid4().hex[:8]}")

            return before

        def new_dir(key: str) -> Callable[[], None]:
            def before() -> None:
                fresh[key] = BlobStore(work / f"d-{uuid.uuid4().hex[:8]}")

            return before

        def noop() -> None:
            pass

        rows: dict[str, tuple[Callable[[], object], Callable[[], None]]] = {
            "up: blobs copy": (lambda: copy_blobs(local, fresh["up"], staging), new_prefix("up")),
            "up: one at a time": (
                lambda: sequential_copy(local, fresh["up0"], staging),
                new_prefix("up0"),
            ),
            "down: blobs copy": (lambda: copy_blobs(full, fresh["dn"], staging), new_dir("dn")),
            "down: one at a time": (
                lambda: sequential_copy(full, fresh["dn0"], staging),
                new_dir("dn0"),
            ),
            "resume: blobs copy": (lambda: copy_blobs(local, full, staging), noop),
            "resume: one at a time": (lambda: sequential_copy(local, full, staging), noop),
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(args.repeat):
            for name, (action, before) in rows.items():
                before()
                start = time.perf_counter()
                action()
                times[name].append(time.perf_counter() - start)
        medians = {name: statistics.median(values) for name, values in times.items()}
        load = os.getloadavg()
        print(
            f"{args.small} blobs of ~200 B and {args.large} of {args.large_mb} MiB, "
            f"{args.repeat} rounds, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        for kind in ("up", "down", "resume"):
            ours, before_ = medians[f"{kind}: blobs copy"], medians[f"{kind}: one at a time"]
            print(
                f"{kind:7} blobs copy {ours:7.2f} s   one at a time {before_:7.2f} s   "
                f"ratio {ours / before_:.2f}"
            )
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(server.workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
