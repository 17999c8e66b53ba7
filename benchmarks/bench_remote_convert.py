"""``push --convert-pickle`` through a registry server against the same push locally.

    PYTHONPATH=. python benchmarks/bench_remote_convert.py [--repeat 7] [--hidden 1024] [--quick]

A LoRA (rank 16 on q_proj and v_proj of each layer, ``--hidden`` wide) saved only as
``adapter_model.bin``. Each sample pushes it with the conversion once to a local registry
and once to a server on 127.0.0.1 (SQLite, local blobs), alternately, each under a new name
(the blobs deduplicate after the first, the conversion and the checks run every time). Both
sides convert with the same code; the remote side adds the upload and the server's push.
Prints the medians in ms, the ratio remote / local and the load average.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.handmade import write_lora  # noqa: E402
from support.server import served_registry  # noqa: E402

from registry import Registry  # noqa: E402


def _pickled(directory: Path, hidden: int) -> Path:
    import torch
    from safetensors.torch import load_file

    write_lora(directory, 1, r=16, alpha=32, hidden=hidden)
    weights = directory / "adapter_model.safetensors"
    torch.save(load_file(str(weights)), directory / "adapter_model.bin")
    weights.unlink()
    return directory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--quick", action="store_true", help="3 samples, hidden 256")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.hidden = 3, 256
    work = Path(tempfile.mkdtemp(prefix="bench-remote-convert-"))
    os.environ["ADAPTERS_CACHE_DIR"] = str(work / "cache")
    try:
        _run(args.repeat, args.hidden, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(repeat: int, hidden: int, work: Path) -> None:
    source = _pickled(work / "adapter", hidden)
    size = (source / "adapter_model.bin").stat().st_size
    local = Registry.open(work / "local", create=True)
    with served_registry(work / "served", f"sqlite:///{work / 'served.db'}") as served:
        remote = Registry.open(served.url, token=served.tokens["writer"])
        times: dict[str, list[float]] = {"local": [], "remote": []}
        for i in range(repeat + 1):  # the first sample warms both sides and is not kept
            for side, registry in (("local", local), ("remote", remote)):
                began = time.perf_counter()
                registry.push(source, name=f"conv-{i}", convert_pickle=True)
                if i:
                    times[side].append((time.perf_counter() - began) * 1000)
        remote.close()
    local.close()
    medians = {side: statistics.median(values) for side, values in times.items()}
    print(f"adapter_model.bin {size / 1e6:.1f} MB, {repeat} samples each, alternating")
    for side, value in medians.items():
        print(f"  {side:6} push --convert-pickle  median {value:8.1f} ms")
    print(f"  remote / local: {medians['remote'] / medians['local']:.2f}")
    print(f"  load average: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
