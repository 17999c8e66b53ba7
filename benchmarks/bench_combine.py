"""Our ``svd`` combine against PEFT's ``add_weighted_adapter(combination_type="svd")``.

    python benchmarks/bench_combine.py [--hidden 2048] [--layers 2] [--rank 16] [--repeat 5]

Two rank-16 LoRA adapters on a Llama-shaped model (hidden 2048, intermediate 5632, all
seven projections of each layer targeted) are combined into one of rank 16 with weights
0.6 / 0.4, in one run:

- PEFT: both adapters loaded on the model, ``add_weighted_adapter`` timed (one run: it
  forms every dense delta and runs a full SVD of each);
- ours, operator only: ``registry.ops.combine`` on the same tensors in memory (median of
  ``--repeat`` runs);
- ours, end to end: ``Registry.combine`` reading both parents from the blob store, writing
  the new version and recording it (median of ``--repeat`` runs, each a new name).

Equal results: per module, the relative Frobenius difference between PEFT's ``B @ A`` and
ours, and between each and the exact truncated SVD of the dense weighted sum.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
WEIGHTS = (0.6, 0.4)


def build_model(hidden: int, intermediate: int, layers: int) -> Any:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=1024,
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=16,
        num_key_value_heads=16,
        max_position_embeddings=128,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config).eval()
    model.config.name_or_path = model.name_or_path = "bench/llama-shaped"
    return model


def save_lora(model: Any, directory: Path, rank: int, seed: int) -> Path:
    """A trained-looking LoRA: random A and B (B is zero at initialisation)."""
    import peft
    import torch

    config = peft.LoraConfig(
        task_type="CAUSAL_LM", r=rank, lora_alpha=2 * rank, target_modules=TARGETS
    )
    wrapped = peft.get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in sorted(wrapped.named_parameters()):
            if "lora_" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    wrapped.save_pretrained(directory)
    wrapped.unload()  # leave the base model as it was
    return directory


def products(model: Any, adapter: str) -> dict[str, Any]:
    found = {}
    for key, module in model.named_modules():
        if adapter in getattr(module, "lora_A", {}):
            short = key.removeprefix("base_model.model.")
            found[short] = module.lora_B[adapter].weight @ module.lora_A[adapter].weight
    return found


def dense_reference(model: Any, rank: int) -> dict[str, Any]:
    """The exact rank-r truncation of each module's dense weighted sum."""
    import torch

    found = {}
    for key, module in model.named_modules():
        if "a" in getattr(module, "lora_A", {}):
            delta = WEIGHTS[0] * module.get_delta_weight("a").double()
            delta += WEIGHTS[1] * module.get_delta_weight("b").double()
            u, s, vh = torch.linalg.svd(delta, full_matrices=False)
            found[key.removeprefix("base_model.model.")] = (u[:, :rank] * s[:rank]) @ vh[:rank]
    return found


def relative(a: Any, b: Any) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--intermediate", type=int, default=5632)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    import peft
    import torch

    from registry import Registry
    from registry.ops.combine import combine
    from registry.ops.methods import CombineSpec
    from registry.ops.tensors import load_adapter_tensors

    torch.set_num_threads(torch.get_num_threads())
    work = Path(tempfile.mkdtemp(prefix="bench-combine-"))
    try:
        model = build_model(args.hidden, args.intermediate, args.layers)
        dirs = [save_lora(model, work / f"p{i}", args.rank, seed=i + 1) for i in range(2)]
        parents = [
            load_adapter_tensors(
                "lora",
                json.loads((d / "adapter_config.json").read_text()),
                d / "adapter_model.safetensors",
            )
            for d in dirs
        ]

        ours_times = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            produced = combine(parents, CombineSpec("svd", WEIGHTS, args.rank))
            ours_times.append(time.perf_counter() - start)
        t_ours = statistics.median(ours_times)

        registry = Registry.open(work / "home", create=True, database_url=f"sqlite:///{work}/c.db")
        for i, directory in enumerate(dirs):
            registry.push(directory, name=f"p{i}")
        e2e_times = []
        for i in range(args.repeat):
            start = time.perf_counter()
            registry.combine(
                ["p0", "p1"],
                name=f"combined-{i}",
                method="svd",
                weights=WEIGHTS,
                rank=args.rank,
            )
            e2e_times.append(time.perf_counter() - start)
        t_e2e = statistics.median(e2e_times)
        registry.close()

        wrapped = peft.PeftModel.from_pretrained(model, dirs[0], adapter_name="a")
        wrapped.load_adapter(dirs[1], adapter_name="b")
        start = time.perf_counter()
        wrapped.add_weighted_adapter(
            ["a", "b"], list(WEIGHTS), "c", combination_type="svd", svd_rank=args.rank
        )
        t_peft = time.perf_counter() - start

        theirs = products(wrapped, "c")
        reference = dense_reference(wrapped, args.rank)
        ours = {}
        for key, tensor in produced.tensors.items():
            if key.endswith("lora_A.weight"):
                module = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
                ours[module] = produced.tensors[key.replace("lora_A", "lora_B")] @ tensor
        assert set(ours) == set(theirs), "the two results adapt different modules"
        ours_vs_peft = max(relative(ours[m], theirs[m]) for m in theirs)
        ours_vs_exact = max(relative(ours[m], reference[m]) for m in theirs)
        peft_vs_exact = max(relative(theirs[m], reference[m]) for m in theirs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    modules = len(theirs)
    results = {
        "modules": modules,
        "hidden": args.hidden,
        "intermediate": args.intermediate,
        "layers": args.layers,
        "rank": f"{args.rank}+{args.rank}->{args.rank}",
        "threads": torch.get_num_threads(),
        "peft_svd_s": round(t_peft, 3),
        "ours_operator_s": round(t_ours, 4),
        "ours_end_to_end_s": round(t_e2e, 4),
        "speedup_operator": round(t_peft / t_ours, 1),
        "speedup_end_to_end": round(t_peft / t_e2e, 1),
        "max_relative_difference_ours_vs_peft": float(f"{ours_vs_peft:.3g}"),
        "max_relative_error_ours_vs_exact": float(f"{ours_vs_exact:.3g}"),
        "max_relative_error_peft_vs_exact": float(f"{peft_vs_exact:.3g}"),
        "retained_energy": produced.parameters["retained_energy"],
    }
    print(
        f"{modules} modules ({args.layers} layers x 7), hidden {args.hidden}, "
        f"r={args.rank}+{args.rank} -> {args.rank}, {results['threads']} threads"
    )
    print("| combine (svd) | seconds | speed-up vs PEFT |")
    print("|---|---|---|")
    print(f"| PEFT add_weighted_adapter | {t_peft:.2f} | 1 |")
    print(f"| ours, operator | {t_ours:.4f} | {results['speedup_operator']:,} |")
    print(
        f"| ours, Registry.combine end to end | {t_e2e:.4f} | {results['speedup_end_to_end']:,} |"
    )
    print(
        f"max relative difference of B@A, ours vs PEFT: {ours_vs_peft:.2e}; vs the exact "
        f"truncation: ours {ours_vs_exact:.2e}, PEFT {peft_vs_exact:.2e}"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
