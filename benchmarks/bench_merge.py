"""Our streaming merge against PEFT's ``merge_and_unload`` + ``save_pretrained``.

    python benchmarks/bench_merge.py [--layers 16] [--rank 16] [--workdir /tmp]

Generates a Llama-shaped bf16 checkpoint of about 2 GB (hidden 2048, intermediate 5632,
16 layers, vocabulary 32000, in 500 MB shards with an index) and a rank-16 LoRA on all
seven projections of every layer, then runs each merge in its own process:

- ours: ``Registry.merge_into_base`` (compatibility check, then tensor-by-tensor merge),
  its peak measured from just before the call (pushing the adapter comes first);
- ours, operator alone: ``registry.ops.merge.merge_checkpoint`` without the check;
- PEFT: ``AutoModelForCausalLM.from_pretrained`` (bf16) + ``PeftModel.from_pretrained`` +
  ``merge_and_unload`` + ``save_pretrained``.

Reported per process: wall time of the merge (ours) or of load + merge + save (PEFT, the
equivalent work), peak resident memory (``VmHWM``), and memory right after imports. The
two outputs are then compared tensor by tensor. The page cache is warmed first so both
read the base from memory. Needs about 3x the checkpoint size of free disk in --workdir.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HIDDEN, INTERMEDIATE, VOCAB = 2048, 5632, 32000
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
SHARD_BYTES = 500 * 10**6


def _memory() -> dict[str, int]:
    """VmHWM (peak) and VmRSS (now) of this process, in bytes."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            found[key] = int(value.split()[0]) * 1024
    return found


def _layer_shapes() -> dict[str, tuple[int, ...]]:
    return {
        "input_layernorm.weight": (HIDDEN,),
        "post_attention_layernorm.weight": (HIDDEN,),
        "self_attn.q_proj.weight": (HIDDEN, HIDDEN),
        "self_attn.k_proj.weight": (HIDDEN, HIDDEN),
        "self_attn.v_proj.weight": (HIDDEN, HIDDEN),
        "self_attn.o_proj.weight": (HIDDEN, HIDDEN),
        "mlp.gate_proj.weight": (INTERMEDIATE, HIDDEN),
        "mlp.up_proj.weight": (INTERMEDIATE, HIDDEN),
        "mlp.down_proj.weight": (HIDDEN, INTERMEDIATE),
    }


def write_checkpoint(directory: Path, layers: int) -> int:
    """A random bf16 Llama checkpoint in ~500 MB shards; returns its size in bytes."""
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    directory.mkdir(parents=True)
    LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        intermediate_size=INTERMEDIATE,
        num_hidden_layers=layers,
        num_attention_heads=16,
        num_key_value_heads=16,
        torch_dtype="bfloat16",
        tie_word_embeddings=False,
    ).save_pretrained(directory)
    names: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (VOCAB, HIDDEN))]
    for layer in range(layers):
        names += [(f"model.layers.{layer}.{k}", s) for k, s in _layer_shapes().items()]
    names += [("model.norm.weight", (HIDDEN,)), ("lm_head.weight", (VOCAB, HIDDEN))]
    generator = torch.Generator().manual_seed(0)
    groups: list[list[tuple[str, tuple[int, ...]]]] = [[]]
    size = 0
    for name, shape in names:
        nbytes = 2 * int(torch.Size(shape).numel())
        if groups[-1] and size + nbytes > SHARD_BYTES:
            groups.append([])
            size = 0
        groups[-1].append((name, shape))
        size += nbytes
    weight_map, total = {}, 0
    for index, group in enumerate(groups):
        file_name = f"model-{index + 1:05d}-of-{len(groups):05d}.safetensors"
        tensors = {}
        for name, shape in group:
            if len(shape) == 1:
                tensors[name] = torch.ones(shape, dtype=torch.bfloat16)
            else:
                tensors[name] = (torch.randn(shape, generator=generator) * 0.02).bfloat16()
            weight_map[name] = file_name
            total += tensors[name].numel() * 2
        save_file(tensors, str(directory / file_name), metadata={"format": "pt"})
        del tensors
    index_doc = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (directory / "model.safetensors.index.json").write_text(json.dumps(index_doc, indent=2))
    return total


def write_adapter(directory: Path, layers: int, rank: int) -> None:
    import torch

    from registry.formats import write_peft_adapter

    shapes = _layer_shapes()
    generator = torch.Generator().manual_seed(1)
    tensors = {}
    for layer in range(layers):
        for key, shape in shapes.items():
            module = key.removesuffix(".weight")
            if module.rsplit(".", 1)[-1] not in TARGETS:
                continue
            prefix = f"base_model.model.model.layers.{layer}.{module}"
            out_f, in_f = shape
            tensors[f"{prefix}.lora_A.weight"] = torch.randn(rank, in_f, generator=generator) * 0.02
            tensors[f"{prefix}.lora_B.weight"] = (
                torch.randn(out_f, rank, generator=generator) * 0.02
            )
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": "bench/llama-2gb",
        "revision": None,
        "r": rank,
        "lora_alpha": 2 * rank,
        "target_modules": TARGETS,
        "lora_dropout": 0.0,
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "inference_mode": True,
    }
    write_peft_adapter(directory, config, tensors)


def _reset_peak() -> None:
    """Start VmHWM afresh (Linux >= 4.0), so that it covers only what follows."""
    Path("/proc/self/clear_refs").write_text("5")


def worker_ours(base: Path, adapter: Path, out: Path, home: Path) -> dict[str, Any]:
    import torch  # imported by the merge anyway; counted in the baseline like PEFT's imports

    from registry import Registry

    after_import = _memory()["VmRSS"]
    with Registry.open(home, create=True, database_url=f"sqlite:///{home}.db") as registry:
        # Recording the adapter (and fingerprinting its base) is not part of the merge.
        registry.push(adapter, name="bench-lora", base_path=base)
        _reset_peak()
        start = time.perf_counter()
        result = registry.merge_into_base("bench-lora", base, out)
        seconds = time.perf_counter() - start
    assert result.compat.ok, result.compat.summary()
    del torch
    return {"seconds": seconds, "after_import": after_import, **_memory()}


def worker_ours_op(base: Path, adapter: Path, out: Path) -> dict[str, Any]:
    """The streaming operator alone, without the registry's compatibility check."""
    from registry.ops.merge import merge_checkpoint
    from registry.ops.tensors import load_adapter_tensors

    after_import = _memory()["VmRSS"]
    config = json.loads((adapter / "adapter_config.json").read_text())
    tensors = load_adapter_tensors("lora", config, adapter / "adapter_model.safetensors")
    start = time.perf_counter()
    merge_checkpoint(tensors, base, out)
    return {"seconds": time.perf_counter() - start, "after_import": after_import, **_memory()}


def worker_peft(base: Path, adapter: Path, out: Path) -> dict[str, Any]:
    import peft
    import torch
    from transformers import AutoModelForCausalLM

    after_import = _memory()["VmRSS"]
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.bfloat16)
    loaded = time.perf_counter()
    merged = peft.PeftModel.from_pretrained(model, adapter).merge_and_unload()
    merged_at = time.perf_counter()
    merged.save_pretrained(out)
    end = time.perf_counter()
    return {
        "seconds": end - start,
        "load_s": loaded - start,
        "merge_s": merged_at - loaded,
        "save_s": end - merged_at,
        "after_import": after_import,
        **_memory(),
    }


def run_worker(kind: str, *paths: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--worker", kind, *map(str, paths)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def compare_outputs(ours: Path, theirs: Path) -> tuple[float, int, int]:
    """Max |difference| (in float32), differing elements, and tensors compared."""

    from registry.ops.shards import open_checkpoint, read_tensor

    mine, other = open_checkpoint(ours), open_checkpoint(theirs)
    other_tensors = other.tensors()
    other_shard = {t.name: s.path for s in other.shards for t in s.tensors}
    worst, differing, compared = 0.0, 0, 0
    for shard in mine.shards:
        with shard.path.open("rb") as handle:
            for info in shard.tensors:
                if info.name not in other_tensors:
                    continue  # a tied weight transformers does not save twice
                with other_shard[info.name].open("rb") as theirs_handle:
                    b = read_tensor(theirs_handle, other_tensors[info.name]).float()
                a = read_tensor(handle, info).float()
                worst = max(worst, float((a - b).abs().max()))
                differing += int((a != b).sum())
                compared += 1
    return worst, differing, compared


def _warm(directory: Path) -> None:
    for path in directory.iterdir():
        with path.open("rb") as handle:
            while handle.read(1 << 24):
                pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *paths = args.worker
        if kind == "ours":
            result = worker_ours(*map(Path, paths))
        elif kind == "ours-op":
            result = worker_ours_op(*map(Path, paths))
        else:
            result = worker_peft(*map(Path, paths))
        print(json.dumps(result))
        return

    work = Path(tempfile.mkdtemp(prefix="bench-merge-", dir=args.workdir))
    try:
        start = time.perf_counter()
        size = write_checkpoint(work / "base", args.layers)
        write_adapter(work / "adapter", args.layers, args.rank)
        generated = time.perf_counter() - start
        _warm(work / "base")
        ours = run_worker("ours", work / "base", work / "adapter", work / "ours", work / "home")
        _warm(work / "base")
        op = run_worker("ours-op", work / "base", work / "adapter", work / "op")
        shutil.rmtree(work / "op")
        _warm(work / "base")
        theirs = run_worker("peft", work / "base", work / "adapter", work / "peft")
        worst, differing, compared = compare_outputs(work / "ours", work / "peft")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    gb = 1e9
    results = {
        "checkpoint_bytes": size,
        "layers": args.layers,
        "rank": args.rank,
        "generate_s": round(generated, 1),
        "ours_s": round(ours["seconds"], 2),
        "peft_s": round(theirs["seconds"], 2),
        "peft_load_s": round(theirs["load_s"], 2),
        "peft_merge_s": round(theirs["merge_s"], 2),
        "peft_save_s": round(theirs["save_s"], 2),
        "ours_op_s": round(op["seconds"], 2),
        "ours_peak_rss": ours["VmHWM"],
        "ours_op_peak_rss": op["VmHWM"],
        "ours_op_rss_after_import": op["after_import"],
        "peft_peak_rss": theirs["VmHWM"],
        "ours_rss_after_import": ours["after_import"],
        "peft_rss_after_import": theirs["after_import"],
        "peak_rss_ratio": round(ours["VmHWM"] / theirs["VmHWM"], 3),
        "time_ratio": round(ours["seconds"] / theirs["seconds"], 3),
        "max_abs_difference": worst,
        "differing_elements": differing,
        "tensors_compared": compared,
    }
    print(f"checkpoint: {size / gb:.2f} GB bf16, {args.layers} layers; LoRA r={args.rank} x 7")
    print("| merge | wall s | peak RSS | RSS after imports |")
    print("|---|---|---|---|")
    print(
        f"| ours (Registry.merge_into_base) | {ours['seconds']:.1f} | "
        f"{ours['VmHWM'] / gb:.2f} GB | {ours['after_import'] / gb:.2f} GB |"
    )
    print(
        f"| ours, streaming operator alone (no compatibility check) | {op['seconds']:.1f} | "
        f"{op['VmHWM'] / gb:.2f} GB | {op['after_import'] / gb:.2f} GB |"
    )
    print(
        f"| PEFT load + merge_and_unload + save_pretrained | {theirs['seconds']:.1f} "
        f"({theirs['load_s']:.1f} + {theirs['merge_s']:.1f} + {theirs['save_s']:.1f}) | "
        f"{theirs['VmHWM'] / gb:.2f} GB | {theirs['after_import'] / gb:.2f} GB |"
    )
    print(
        f"peak RSS ours/PEFT {results['peak_rss_ratio']:.2f}, time ours/PEFT "
        f"{results['time_ratio']:.2f}; outputs: {compared} tensors compared, max |diff| "
        f"{worst:.3g}, {differing} differing elements"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
