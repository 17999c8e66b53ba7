"""Switching adapters: ``AdapterPool.use`` against PEFT's ``set_adapter`` / ``load_adapter``.

    python benchmarks/bench_pool.py [--hidden 512] [--layers 4] [--rank 16] [--repeat 200]

Four rank-``--rank`` LoRA adapters on all seven projections of a Llama-shaped model, in
one run:

- warm switch: the adapters resident; PEFT ``set_adapter`` to the next one, against
  ``with pool.use("name@prod")`` (resolution cached, lock, ``set_adapter``);
- cold switch: PEFT ``load_adapter`` from the saved directory (then ``delete_adapter``
  of the previous one), against a pool with ``max_resident=1`` (each ``use`` loads the
  version from the materialised cache after the once-per-version check, and evicts);
- the pool's first use of a version (materialise, check against the base, load).

Medians of ``--repeat`` switches (cold: ``--repeat // 10``); ratios pool / PEFT.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
NAMES = ("a", "b", "c", "d")


def build_model(hidden: int, layers: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=1024,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=8,
        num_key_value_heads=8,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    model.config.name_or_path = model.name_or_path = "bench/llama-shaped"
    return model


def save_lora(args: argparse.Namespace, directory: Path, seed: int) -> Path:
    import peft
    import torch

    model = peft.get_peft_model(
        build_model(args.hidden, args.layers),
        peft.LoraConfig(r=args.rank, lora_alpha=2 * args.rank, target_modules=TARGETS),
    )
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, param in sorted(model.named_parameters()):
            if param.requires_grad:
                param.add_(torch.randn(param.shape, generator=generator) * 0.02)
    model.save_pretrained(directory, save_embedding_layers=False)
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()

    import peft

    from registry import Registry
    from registry.integrations.pool import AdapterPool

    work = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    os.environ["ADAPTERS_HOME"] = str(work / "home")
    registry = Registry.open(work / "home", create=True)
    base_dir = work / "base"
    build_model(args.hidden, args.layers).save_pretrained(base_dir)
    dirs = {name: save_lora(args, work / name, seed) for seed, name in enumerate(NAMES)}
    for name, directory in dirs.items():
        registry.push(directory, name=name, base_path=base_dir, alias="prod")

    # PEFT, warm: all four resident, set_adapter round robin.
    model = peft.PeftModel.from_pretrained(build_model(args.hidden, args.layers), dirs["a"], "a")
    for name in NAMES[1:]:
        model.load_adapter(dirs[name], adapter_name=name)
    # The pool, first use of each version.
    pool = AdapterPool(registry, build_model(args.hidden, args.layers), max_resident=4)
    firsts = []
    for name in NAMES:
        start = time.perf_counter()
        with pool.use(f"{name}@prod"):
            pass
        firsts.append(time.perf_counter() - start)
    # Warm, interleaved sample by sample so that the machine's load falls on both alike.
    peft_samples, pool_samples = [], []
    for index in range(args.repeat):
        name = NAMES[index % 4]
        start = time.perf_counter()
        model.set_adapter(name)
        peft_samples.append(time.perf_counter() - start)
        start = time.perf_counter()
        with pool.use(f"{name}@prod"):
            pass
        pool_samples.append(time.perf_counter() - start)
    peft_warm = statistics.median(peft_samples)
    pool_warm = statistics.median(pool_samples)
    pool.close()

    # Cold: PEFT loads the next adapter and deletes the previous; the pool evicts.
    cold_repeat = max(args.repeat // 10, 5)
    state = {"current": "d"}

    # Rename in place so each cold load creates a new adapter name and deletes the old one.
    for name in NAMES[:3]:
        model.delete_adapter(name)
    model.set_adapter("d")
    names_cycle = iter(range(10**9))

    def peft_cold_switch() -> None:
        index = next(names_cycle)
        name = f"{NAMES[index % 4]}{index}"
        model.load_adapter(dirs[NAMES[index % 4]], adapter_name=name)
        model.set_adapter(name)
        model.delete_adapter(state["current"])
        state["current"] = name

    small = AdapterPool(registry, build_model(args.hidden, args.layers), max_resident=1)
    for name in NAMES:
        with small.use(f"{name}@prod"):
            pass  # versions checked once; later loads come from the materialised cache
    peft_cold, pool_cold = [], []
    for index in range(cold_repeat):
        start = time.perf_counter()
        peft_cold_switch()
        peft_cold.append(time.perf_counter() - start)
        start = time.perf_counter()
        with small.use(f"{NAMES[index % 4]}@prod"):
            pass
        pool_cold.append(time.perf_counter() - start)
    peft_cold_time = statistics.median(peft_cold)
    pool_cold_time = statistics.median(pool_cold)
    small.close()

    result = {
        "model": f"llama-shaped hidden {args.hidden}, {args.layers} layers, rank {args.rank}",
        "peft_set_adapter_ms": peft_warm * 1e3,
        "pool_use_resident_ms": pool_warm * 1e3,
        "warm_ratio_pool_over_peft": pool_warm / peft_warm,
        "peft_load_adapter_switch_ms": peft_cold_time * 1e3,
        "pool_use_evicting_ms": pool_cold_time * 1e3,
        "cold_ratio_pool_over_peft": pool_cold_time / peft_cold_time,
        "pool_first_use_ms": statistics.median(firsts) * 1e3,
        "load_average": os.getloadavg(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
