"""Operators through a registry server against the same operators on a local registry.

    PYTHONPATH=. python benchmarks/bench_remote_operators.py [--repeat 7] [--hidden 256]

A LoRA pair on a Llama-shaped base (``--hidden``), stored alike in a local registry and in
a server on 127.0.0.1 (SQLite, local blobs). Each operation runs alternately locally and
remotely, ``--repeat`` times, each run making a new version: ``combine --method svd``,
``resize``, ``merge`` into the base. The tensor work is the same code on both sides; the
remote side adds resolving over HTTP, the signature policy and base record look-ups,
uploading the result and the server's push. Blobs come from the client's cache after the
first (untimed) run. Prints medians in ms and the ratio remote / local.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from support.server import served_registry  # noqa: E402

from registry import Registry  # noqa: E402


def _base(hidden: int) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        hidden_size=hidden, intermediate_size=hidden * 2, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, vocab_size=256,
    )  # fmt: skip
    import torch

    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def _adapter(base: Any, directory: Path, seed: int, rank: int) -> Path:
    import peft
    import torch

    torch.manual_seed(seed)
    config = peft.LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"],
                             init_lora_weights=False)  # fmt: skip
    model = peft.get_peft_model(base, config)
    model.save_pretrained(directory)
    model.unload()
    return directory


def _median_ms(action: Callable[[int], object], repeat: int, start: int) -> float:
    times = []
    for i in range(repeat):
        began = time.perf_counter()
        action(start + i)
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--hidden", type=int, default=256)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-remote-ops-"))
    os.environ["ADAPTERS_CACHE_DIR"] = str(work / "cache")
    try:
        _run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _run(args: argparse.Namespace, work: Path) -> None:
    base = _base(args.hidden)
    base_dir = work / "base"
    base.save_pretrained(base_dir)
    a = _adapter(_base(args.hidden), work / "a", 1, 8)
    b = _adapter(_base(args.hidden), work / "b", 2, 16)
    local = Registry.open(work / "local", create=True)
    with served_registry(work / "home", f"sqlite:///{work / 'c.db'}") as served:
        remote = Registry.open(served.url, token=served.tokens["maintainer"])
        for reg in (local, remote):
            reg.push(a, name="a", base_path=base_dir)
            reg.push(b, name="b", base_path=base_dir)
        jobs: dict[str, Callable[[Registry, int], object]] = {
            "combine svd": lambda reg, i: reg.combine(
                ["a", "b"], name=f"ab{i}", method="svd", weights=[0.5, 0.5], rank=8
            ),
            "resize": lambda reg, i: reg.resize("b", 4, name=f"small{i}"),
            "merge": lambda reg, i: reg.merge_into_base(
                "a", base_dir, work / f"merged-{id(reg)}-{i}", overwrite=True
            ),
        }
        print(f"hidden {args.hidden}, medians of {args.repeat}, load {os.getloadavg()[0]:.1f}")
        print(f"{'operation':<14}{'local ms':>10}{'remote ms':>11}{'remote/local':>14}")
        for label, job in jobs.items():
            for reg in (local, remote):
                job(reg, 10_000)  # warm: the client's cache holds the blobs afterwards
            mine = _median_ms(lambda i, job=job: job(local, i), args.repeat, 0)  # type: ignore[misc]
            theirs = _median_ms(lambda i, job=job: job(remote, i), args.repeat, 0)  # type: ignore[misc]
            print(f"{label:<14}{mine:>10.1f}{theirs:>11.1f}{theirs / mine:>14.2f}")
        remote.close()
    local.close()


if __name__ == "__main__":
    main()
