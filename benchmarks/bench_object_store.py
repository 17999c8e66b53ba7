"""Push and export of a 1 GiB adapter on S3 (a SeaweedFS server on 127.0.0.1) against
plain uploads and downloads of the same bytes.

    python benchmarks/bench_object_store.py [--size-mb 1024] [--repeat 3]
    python benchmarks/bench_object_store.py --quick     # 256 MiB, 3 rounds
    python benchmarks/bench_object_store.py --phases    # one push's timeline (push_phases.py)

One LoRA adapter of about ``--size-mb`` (float16 factors, rank 64, hidden 4096) is
written once. Side by side in one run, medians of ``--repeat`` rounds in which the
compared rows take turns (so a change in the machine's load touches them alike):

- upload, headline: the whole ``push`` of the adapter directory (format checks, the
  large file hashed beside them, the upload proven by the file's stamp, the catalog)
  vs ``obstore.put`` of the weights file vs boto3 ``upload_file``; for information the
  same push of a file changed just before it (hashed again through the upload's
  reader), the blob put alone given the digest and the stamp or the digest only, and
  ``obstore.put`` fed the same 16 MiB reads from Python that the stamped upload feeds
  it (how much of the gap is obstore's own file reading). The weights file is left to
  settle (``file_stamp.SETTLED_SECONDS``) before the upload rows;
- download, headline: ``export`` with a cold cache (parallel ranged GETs, hashed in
  order, written to the target and the cache) vs ``obstore.get`` streamed to a file vs
  boto3 ``download_file``; for information the same export read as one stream;
- a second export (cache hit) vs an export from a local-directory store.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def write_adapter(directory: Path, size_mb: int) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    r, hidden = 64, 4096
    per_module = 2 * r * hidden * 2  # A and B, float16
    count = max(1, size_mb * 1024 * 1024 // per_module)
    modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    rng = np.random.default_rng(0)
    tensors = {}
    for i in range(count):
        layer, module = divmod(i, len(modules))
        key = f"base_model.model.model.layers.{layer}.self_attn.{modules[module]}"
        for name, shape in (("lora_A", (r, hidden)), ("lora_B", (hidden, r))):
            bits = rng.integers(0, 1 << 16, size=shape, dtype=np.uint16) & 0x7BFF  # finite
            tensors[f"{key}.{name}.weight"] = bits.view(np.float16)
    directory.mkdir(parents=True)
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    used = sorted({modules[i % len(modules)] for i in range(count)})
    config = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "bench/base",
        "revision": None, "r": r, "lora_alpha": 2 * r, "target_modules": used,
        "fan_in_fan_out": False, "use_rslora": False, "bias": "none", "lora_dropout": 0.0,
    }  # fmt: skip
    (directory / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
    return directory


def group_cpu(group: int | None) -> float:
    """CPU seconds (user + system) used so far by this process and by the processes of
    ``group`` (the S3 server's process group)."""
    own = os.times()
    total = own.user + own.system
    if group is None:
        return total
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[2]) == group:  # pgrp; utime and stime follow at 11 and 12
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


CPU: dict[str, float] = {}  # median CPU seconds of each row, client and server together


def interleaved(
    rows: dict[str, tuple[Callable[[], object], Callable[[], object]]],
    repeat: int,
    group: int | None = None,
) -> dict[str, float]:
    """Median seconds of each ``(action, before)`` row, the rows taking turns in each
    round so that a change in the machine's load touches them alike. The median CPU time
    of each row, this process's and the server's (``group``), goes to ``CPU``: on a busy
    machine it says what a row costs more steadily than the wall clock."""
    times: dict[str, list[float]] = {name: [] for name in rows}
    cpu: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeat):
        for name, (action, before) in rows.items():
            before()
            used = group_cpu(group)
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
            cpu[name].append(group_cpu(group) - used)
    CPU.update({name: statistics.median(values) for name, values in cpu.items()})
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="256 MiB, 3 rounds")
    parser.add_argument(
        "--part-mb", type=int, default=None, help="multipart part size for every upload row"
    )
    parser.add_argument(
        "--concurrency", type=int, default=None, help="parts in flight for every upload row"
    )
    parser.add_argument(
        "--phases", action="store_true", help="print the timeline of --repeat pushes, then stop"
    )
    options = parser.parse_args()
    if options.quick:
        options.size_mb, options.repeat = 256, 3

    import boto3
    import obstore
    from botocore.config import Config
    from support.s3_server import BUCKET, start_server

    from registry import Registry
    from registry.store import file_stamp, object_blobs
    from registry.store.file_stamp import FileStamp
    from registry.store.hashing import sha256_file
    from registry.store.object_blobs import ObjectBlobStore

    if options.part_mb is not None:  # the same tuning for the registry and plain obstore
        object_blobs.PART_SIZE = options.part_mb << 20
    if options.concurrency is not None:
        object_blobs.PART_CONCURRENCY = options.concurrency
    part, in_flight = object_blobs.PART_SIZE, object_blobs.PART_CONCURRENCY
    work = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    server = start_server()
    try:
        os.environ.update(server.env)
        os.environ["ADAPTERS_ACTOR"] = "bench"
        adapter = write_adapter(work / "adapter", options.size_mb)
        weights = adapter / "adapter_model.safetensors"
        size = weights.stat().st_size
        load_start = os.getloadavg()
        print(f"adapter: {size / 2**20:.0f} MiB, load {load_start[0]:.1f}; uploads in "
              f"{part >> 20} MiB parts, {in_flight} in flight", flush=True)  # fmt: skip

        os.environ["ADAPTERS_BLOB_URL"] = f"s3://{BUCKET}/bench"
        s3_reg = Registry.open(work / "home-s3", create=True)
        blobs = s3_reg.blobs
        assert isinstance(blobs, ObjectBlobStore)
        client = boto3.client(
            "s3", endpoint_url=server.endpoint, config=Config(region_name="us-east-1")
        )
        plain_key = "plain/blob"
        sha = sha256_file(weights)
        pushes = iter(range(10**6))

        def drop_blobs() -> None:
            for digest in list(blobs.iter_digests()):
                blobs.delete(digest)

        def push() -> None:  # a new name each time, its blobs deleted: a full upload
            s3_reg.push(adapter, name=f"big{next(pushes)}")

        def push_racy() -> None:  # as if just written: hashed again through the upload
            settled = file_stamp.SETTLED_SECONDS
            file_stamp.SETTLED_SECONDS = 10**9
            try:
                push()
            finally:
                file_stamp.SETTLED_SECONDS = settled

        def put_python_parts() -> None:
            with open(weights, "rb") as handle:
                parts = iter(lambda: handle.read(part), b"")
                obstore.put(
                    blobs.store, plain_key, parts, chunk_size=part, max_concurrency=in_flight
                )

        _settle(weights, file_stamp.SETTLED_SECONDS)
        server_group = server.process.pid if server.process is not None else None
        stamp = FileStamp.of(weights.stat())
        nothing = lambda: None  # noqa: E731
        if options.phases:
            _phases(push, drop_blobs, lambda: obstore.put(
                blobs.store, plain_key, weights, chunk_size=part, max_concurrency=in_flight
            ), options.repeat)  # fmt: skip
            from push_phases import prehash_rounds

            print("\n".join(prehash_rounds(adapter, weights, max(options.repeat, 5))))
            return
        results = interleaved(
            {
                "push (whole command)": (push, drop_blobs),
                "put obstore": (
                    lambda: obstore.put(blobs.store, plain_key, weights, chunk_size=part,
                                        max_concurrency=in_flight),
                    nothing,
                ),
                "put boto3": (
                    lambda: client.upload_file(str(weights), BUCKET, plain_key), nothing
                ),
                "push, file just changed (info)": (push_racy, drop_blobs),
                "blob put, digest + stamp (info)": (
                    lambda: blobs.put_file(weights, expected=sha, stamp=stamp), drop_blobs
                ),
                "blob put, digest known (info)": (
                    lambda: blobs.put_file(weights, expected=sha), drop_blobs
                ),
                "put obstore, Python parts (info)": (put_python_parts, nothing),
            },
            options.repeat,
            server_group,
        )  # fmt: skip

        s3_reg.push(adapter, name="big")
        out = work / "out"

        def cold() -> None:
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(blobs.cache.root, ignore_errors=True)

        def plain_get() -> None:
            with open(work / "plain-out", "wb") as handle:
                for chunk in obstore.get(blobs.store, plain_key).stream(min_chunk_size=8 << 20):
                    handle.write(chunk)

        def export() -> None:
            s3_reg.export("big", out, overwrite=True)

        def export_one_stream() -> None:
            ranged_from = object_blobs.READ_CHUNK
            object_blobs.READ_CHUNK = 1 << 62  # every blob read as one GET
            try:
                export()
            finally:
                object_blobs.READ_CHUNK = ranged_from

        results.update(
            interleaved(
                {
                    "export (cold cache)": (export, cold),
                    "get obstore": (plain_get, nothing),
                    "get boto3": (
                        lambda: client.download_file(BUCKET, plain_key, str(work / "boto-out")),
                        nothing,
                    ),
                    "export, cold, one stream (info)": (export_one_stream, cold),
                },
                options.repeat,
                server_group,
            )
        )
        del os.environ["ADAPTERS_BLOB_URL"]
        local_reg = Registry.open(work / "home-local", create=True)
        local_reg.push(adapter, name="big")
        warm = lambda: shutil.rmtree(out, ignore_errors=True)  # noqa: E731
        results.update(
            interleaved(
                {
                    "export (cache hit)": (export, warm),
                    "export local store": (
                        lambda: local_reg.export("big", out, overwrite=True),
                        warm,
                    ),
                },
                options.repeat,
                server_group,
            )
        )
        load_end = os.getloadavg()

        for name, seconds in results.items():
            cpu = f"  CPU {CPU[name]:6.2f} s (client + server)" if name in CPU else ""
            print(f"{name:34} {seconds:7.2f} s  {size / seconds / 2**20:7.0f} MiB/s{cpu}")
        r = results
        print(f"push / obstore {r['push (whole command)'] / r['put obstore']:.2f}x, "
              f"push / boto3 {r['push (whole command)'] / r['put boto3']:.2f}x")  # fmt: skip
        cold_ratio = r["export (cold cache)"]
        print(f"cold export / obstore {cold_ratio / r['get obstore']:.2f}x, "
              f"cold export / boto3 {cold_ratio / r['get boto3']:.2f}x")  # fmt: skip
        cached = r["export (cache hit)"] / r["export local store"]
        print(f"cached export / local export {cached:.2f}x")
        plain = r["put obstore"]
        c = CPU
        print(f"CPU: push / obstore {c['push (whole command)'] / c['put obstore']:.2f}x, "
              f"push of a just-changed file / obstore "
              f"{c['push, file just changed (info)'] / c['put obstore']:.2f}x, "
              f"blob put given the stamp / obstore "
              f"{c['blob put, digest + stamp (info)'] / c['put obstore']:.2f}x")  # fmt: skip
        racy = r["push, file just changed (info)"]
        print(f"push of a just-changed file / obstore {racy / plain:.2f}x, "
              f"/ boto3 {racy / r['put boto3']:.2f}x")  # fmt: skip
        stamped = r["blob put, digest + stamp (info)"]
        known = r["blob put, digest known (info)"]
        print(f"blob put / obstore: digest + stamp {stamped / plain:.2f}x, "
              f"digest only (hashing reader) {known / plain:.2f}x")  # fmt: skip
        parts = r["put obstore, Python parts (info)"]
        print(
            f"obstore.put of Python parts / of the path {parts / plain:.2f}x; "
            f"push / obstore.put of Python parts {r['push (whole command)'] / parts:.2f}x"
        )
        one = r["export, cold, one stream (info)"]
        print(f"one-stream cold export / obstore {one / r['get obstore']:.2f}x")
        loads = " ".join(f"{value:.1f}" for value in (*load_start, *load_end))
        print(f"load average (1, 5, 15 min; start, end): {loads}")
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def _settle(path: Path, seconds: int) -> None:
    """Wait until ``path`` last changed ``seconds`` ago, so a push may trust its stamp."""
    status = path.stat()
    changed = max(status.st_mtime_ns, status.st_ctime_ns) / 1e9
    wait = changed + seconds + 1 - time.time()
    if wait > 0:
        print(f"waiting {wait:.0f} s for the weights file to settle", flush=True)
        time.sleep(wait)


def _phases(
    push: Callable[[], object],
    drop_blobs: Callable[[], object],
    plain_put: Callable[[], object],
    repeat: int,
) -> None:
    from push_phases import timeline

    for _ in range(repeat):
        drop_blobs()
        print("\n".join(timeline(push)))
        start = time.perf_counter()
        plain_put()
        print(f"{'(plain obstore.put, next)':32} {time.perf_counter() - start:23.3f}", flush=True)
    print(f"load average: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
