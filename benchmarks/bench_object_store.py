"""Blobs on S3 (a SeaweedFS server on 127.0.0.1) against plain uploads and downloads.

    python benchmarks/bench_object_store.py [--size-mb 1024] [--repeat 3]

One LoRA adapter of about ``--size-mb`` (float16 factors, rank 64, hidden 4096) is
written once. Side by side in one run, medians of ``--repeat`` rounds in which the
compared rows take turns:

- upload: the registry's blob put (hash, then multipart upload through the hashing
  reader) vs ``obstore.put`` of the same file vs boto3 ``upload_file``;
- download: ``export`` with a cold cache (one stream from the store, read ahead,
  hashed and written to the target and the cache together) vs ``obstore.get``
  streamed to a file vs boto3 ``download_file``;
- a second export (cache hit) vs an export from a local-directory store;
- for information, the whole ``push`` (format checks included) to S3 and locally.
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


def median_time(action: Callable[[], object], repeat: int, before: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        before()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved(
    rows: dict[str, tuple[Callable[[], object], Callable[[], object]]], repeat: int
) -> dict[str, float]:
    """Median seconds of each ``(action, before)`` row, the rows taking turns in each
    round so that a change in the machine's load touches them alike."""
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(repeat):
        for name, (action, before) in rows.items():
            before()
            start = time.perf_counter()
            action()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()

    import boto3
    import obstore
    from botocore.config import Config
    from support.s3_server import BUCKET, start_server

    from registry import Registry
    from registry.store.object_blobs import ObjectBlobStore

    work = Path(tempfile.mkdtemp(prefix="bench-s3-"))
    server = start_server()
    try:
        os.environ.update(server.env)
        os.environ["ADAPTERS_ACTOR"] = "bench"
        adapter = write_adapter(work / "adapter", options.size_mb)
        weights = adapter / "adapter_model.safetensors"
        size = weights.stat().st_size
        print(f"adapter: {size / 2**20:.0f} MiB, load {os.getloadavg()[0]:.1f}")

        os.environ["ADAPTERS_BLOB_URL"] = f"s3://{BUCKET}/bench"
        s3_reg = Registry.open(work / "home-s3", create=True)
        blobs = s3_reg.blobs
        assert isinstance(blobs, ObjectBlobStore)
        client = boto3.client(
            "s3", endpoint_url=server.endpoint, config=Config(region_name="us-east-1")
        )
        plain_key = "plain/blob"
        from registry.store.hashing import sha256_file

        sha = sha256_file(weights)

        def drop_blob() -> None:
            blobs.delete(sha)

        results = interleaved(
            {
                "put registry": (lambda: blobs.put_file(weights), drop_blob),
                "put obstore": (
                    lambda: obstore.put(blobs.store, plain_key, weights, chunk_size=16 << 20,
                                        max_concurrency=8),
                    lambda: None,
                ),
                "put boto3": (
                    lambda: client.upload_file(str(weights), BUCKET, plain_key), lambda: None
                ),
            },
            options.repeat,
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

        export = lambda: s3_reg.export("big", out, overwrite=True)  # noqa: E731
        results.update(
            interleaved(
                {
                    "get registry export (cold cache)": (export, cold),
                    "get obstore": (plain_get, lambda: None),
                    "get boto3": (
                        lambda: client.download_file(BUCKET, plain_key, str(work / "boto-out")),
                        lambda: None,
                    ),
                },
                options.repeat,
            )
        )
        results["export s3 (cached)"] = median_time(
            export, options.repeat, lambda: shutil.rmtree(out, ignore_errors=True)
        )
        del os.environ["ADAPTERS_BLOB_URL"]
        local_reg = Registry.open(work / "home-local", create=True)
        start = time.perf_counter()
        local_reg.push(adapter, name="big")
        results["push local (info)"] = time.perf_counter() - start
        results["export local"] = median_time(
            lambda: local_reg.export("big", out, overwrite=True),
            options.repeat, lambda: shutil.rmtree(out, ignore_errors=True),
        )  # fmt: skip
        os.environ["ADAPTERS_BLOB_URL"] = f"s3://{BUCKET}/bench-push"
        s3_push = Registry.open(work / "home-s3-push", create=True)
        start = time.perf_counter()
        s3_push.push(adapter, name="big")
        results["push s3 (info)"] = time.perf_counter() - start

        for name, seconds in results.items():
            print(f"{name:34} {seconds:7.2f} s  {size / seconds / 2**20:7.0f} MiB/s")
        r = results
        print(f"put: registry / obstore {r['put registry'] / r['put obstore']:.2f}x, "
              f"registry / boto3 {r['put registry'] / r['put boto3']:.2f}x")  # fmt: skip
        cold_ratio = r["get registry export (cold cache)"]
        print(f"get: export cold / obstore {cold_ratio / r['get obstore']:.2f}x, "
              f"export cold / boto3 {cold_ratio / r['get boto3']:.2f}x")  # fmt: skip
        print(f"cached export / local export {r['export s3 (cached)'] / r['export local']:.2f}x")
        print(f"load after: {os.getloadavg()[0]:.1f}")
    finally:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
