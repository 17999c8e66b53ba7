"""Time the ``afp-1`` fingerprint of a checkpoint with the shapes of Llama-2-7B.

    python benchmarks/bench_fingerprint.py [--repeat 7] [--dense] [--keep DIR]

The checkpoint has Llama-2-7B's 291 tensors (6.74 B parameters, 13.5 GB in fp16) in three
safetensors shards with a ``model.safetensors.index.json``. By default each shard is written
*sparse*: its real header, then ``truncate`` to the full size, so the data reads as zeros
without using disk space. That still exercises everything the fingerprint does -- header
parsing, mmap, one page fault per sampled element -- but no page ever comes from the disk.

``--dense`` writes real (pseudo-random) bytes instead (13.5 GB of disk, about a minute) and
also times cold reads: before each cold run the shards are dropped from the page cache with
``posix_fadvise(DONTNEED)``, which touches only these files.

Reported: the median in-process time of ``fingerprint_directory`` over ``--repeat`` runs,
and a fresh interpreter's wall time for import + fingerprint.

``--exhaustive`` also times exhaustive mode (the sha256 of every tensor's bytes) with an empty
digest cache (cold) and a filled one (warm), side by side with ``sha256sum`` of the same shard
files, medians over ``--exhaustive-repeat`` runs, reported as ratios to ``sha256sum``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from registry.bases.file_source import fingerprint_directory  # noqa: E402

VOCAB, HIDDEN, INTERMEDIATE, LAYERS = 32000, 4096, 11008, 32
SHARD_BYTES = 5 * 1024**3
ITEMSIZE = 2  # fp16


def llama_7b_shapes() -> Iterator[tuple[str, tuple[int, ...]]]:
    """Tensor names and shapes in the order transformers writes them."""
    yield "model.embed_tokens.weight", (VOCAB, HIDDEN)
    for i in range(LAYERS):
        prefix = f"model.layers.{i}"
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield f"{prefix}.self_attn.{proj}.weight", (HIDDEN, HIDDEN)
        yield f"{prefix}.mlp.gate_proj.weight", (INTERMEDIATE, HIDDEN)
        yield f"{prefix}.mlp.up_proj.weight", (INTERMEDIATE, HIDDEN)
        yield f"{prefix}.mlp.down_proj.weight", (HIDDEN, INTERMEDIATE)
        yield f"{prefix}.input_layernorm.weight", (HIDDEN,)
        yield f"{prefix}.post_attention_layernorm.weight", (HIDDEN,)
    yield "model.norm.weight", (HIDDEN,)
    yield "lm_head.weight", (VOCAB, HIDDEN)


def plan_shards() -> list[list[tuple[str, tuple[int, ...]]]]:
    shards: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    used = 0
    for name, shape in llama_7b_shapes():
        size = ITEMSIZE * _numel(shape)
        if used and used + size > SHARD_BYTES:
            shards.append([])
            used = 0
        shards[-1].append((name, shape))
        used += size
    return shards


def _numel(shape: tuple[int, ...]) -> int:
    count = 1
    for dim in shape:
        count *= dim
    return count


def write_checkpoint(directory: Path, dense: bool) -> int:
    """Write the shards and their index; return the total file size in bytes."""
    directory.mkdir(parents=True, exist_ok=True)
    shards = plan_shards()
    weight_map: dict[str, str] = {}
    total = 0
    for number, tensors in enumerate(shards, start=1):
        file_name = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
        header: dict[str, object] = {"__metadata__": {"format": "pt"}}
        offset = 0
        for name, shape in tensors:
            size = ITEMSIZE * _numel(shape)
            header[name] = {
                "dtype": "F16",
                "shape": list(shape),
                "data_offsets": [offset, offset + size],
            }
            weight_map[name] = file_name
            offset += size
        raw = json.dumps(header, separators=(",", ":")).encode()
        raw += b" " * (-len(raw) % 8)  # safetensors pads the header to 8 bytes
        path = directory / file_name
        with path.open("wb") as handle:
            handle.write(struct.pack("<Q", len(raw)) + raw)
            if dense:
                _write_noise(handle, offset)
            handle.truncate(8 + len(raw) + offset)
        total += 8 + len(raw) + offset
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    return total


def _write_noise(handle: BinaryIO, size: int) -> None:
    # One random 64 MiB block written over and over: real bytes on disk, cheap to produce.
    block = os.urandom(64 * 1024 * 1024)
    written = 0
    while written < size:
        chunk = min(len(block), size - written)
        handle.write(block[:chunk])
        written += chunk


def drop_from_page_cache(directory: Path) -> None:
    for path in directory.glob("*.safetensors"):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def timed(
    runs: int, action: Callable[[], object], before: Callable[[], None] | None = None
) -> list[float]:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return times


def fresh_process_seconds(directory: Path) -> float:
    code = (
        "import sys, time; start = time.perf_counter(); sys.path.insert(0, sys.argv[1]); "
        "from registry.bases.file_source import fingerprint_directory; "
        "fingerprint_directory(sys.argv[2]); print(time.perf_counter() - start)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), str(directory)],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--dense", action="store_true", help="write 13.5 GB of real bytes")
    parser.add_argument("--keep", type=Path, help="write the checkpoint here and keep it")
    parser.add_argument("--exhaustive", action="store_true", help="time exhaustive mode too")
    parser.add_argument("--exhaustive-repeat", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fingerprint-") as scratch:
        directory = args.keep or Path(scratch) / "llama-7b-shaped"
        start = time.perf_counter()
        size = write_checkpoint(directory, args.dense)
        print(
            f"wrote {len(plan_shards())} shards, {sum(1 for _ in llama_7b_shapes())} tensors, "
            f"{size / 1e9:.1f} GB ({'dense' if args.dense else 'sparse'}) "
            f"in {time.perf_counter() - start:.1f} s"
        )
        result = fingerprint_directory(directory)
        print(f"fingerprint: {result.tensor_count} tensors, {result.total_params:,} params")
        print(f"  structure {result.structure}\n  content   {result.content}")

        warm = timed(args.repeat, lambda: fingerprint_directory(directory))
        print(
            f"in-process, warm:  median {statistics.median(warm) * 1e3:.1f} ms "
            f"(min {min(warm) * 1e3:.1f}, max {max(warm) * 1e3:.1f}) over {args.repeat} runs"
        )
        fresh = [fresh_process_seconds(directory) for _ in range(3)]
        print(f"fresh interpreter, import + fingerprint: {statistics.median(fresh) * 1e3:.0f} ms")
        if args.dense:
            cold = timed(
                args.repeat,
                lambda: fingerprint_directory(directory),
                before=lambda: drop_from_page_cache(directory),
            )
            print(f"in-process, cold page cache: median {statistics.median(cold) * 1e3:.1f} ms")
        if args.exhaustive:
            bench_exhaustive(directory, Path(scratch) / "digest-cache", args.exhaustive_repeat)


def bench_exhaustive(directory: Path, cache: Path, runs: int) -> None:
    """Exhaustive fingerprints, cold and warm digest cache, against sha256sum, interleaved."""
    import shutil

    os.environ["ADAPTERS_DIGEST_CACHE"] = str(cache)
    shards = sorted(str(p) for p in directory.glob("*.safetensors"))
    command = ["sha256sum", *shards]
    cold, warm, coreutils = [], [], []
    for _ in range(runs):
        shutil.rmtree(cache, ignore_errors=True)
        cold += timed(1, lambda: fingerprint_directory(directory, exhaustive=True))
        warm += timed(1, lambda: fingerprint_directory(directory, exhaustive=True))
        coreutils += timed(1, lambda: subprocess.run(command, check=True, capture_output=True))
    base = statistics.median(coreutils)
    for label, times in (("cold cache", cold), ("warm cache", warm), ("sha256sum", coreutils)):
        median = statistics.median(times)
        print(f"exhaustive, {label}: median {median:.2f} s, {median / base:.3f}x sha256sum")


if __name__ == "__main__":
    main()
