"""Fingerprint a live transformers 5 model under its saved names: ours against the
``save_pretrained`` route.

    python benchmarks/bench_live_fingerprint.py [--repeat 7]

Every load fingerprints the live model, and transformers 5 keeps some modules under other
names than its checkpoint (ViT) or fused (Mixtral's experts). Three ways, interleaved, median
of ``--repeat`` runs each, on models built from configs (random weights, float32, CPU):

- ours: ``fingerprint_module`` (renamed tensors by name only, fused ones split into views);
- peer: the same sampling over ``transformers.core_model_loading.revert_weight_conversion``
  of the whole state dict, what ``save_pretrained`` writes (fused pieces copied);
- names as live: the fingerprint without any conversion (what it cost before, and wrong for
  these models), the floor.

Models: ViT-Base/16 (86 M parameters, renamed), a 4-layer Mixtral with 8 experts of width
1024 at hidden size 512 (fused, 101 M), and a 12-layer Llama at hidden size 768 (no
conversion: what the lookup costs a model that needs none).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MixtralConfig,
    MixtralForCausalLM,
    ViTConfig,
    ViTForImageClassification,
)
from transformers.core_model_loading import revert_weight_conversion

import registry.bases.module_source as module_source
from registry.bases.checkpoint_names import CheckpointLayout


def _models() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    return {
        "ViT-Base/16": ViTForImageClassification(ViTConfig()).eval(),
        "Mixtral 4L x 8 experts": MixtralForCausalLM(
            MixtralConfig(
                hidden_size=512,
                intermediate_size=1024,
                num_hidden_layers=4,
                num_attention_heads=8,
                num_key_value_heads=2,
                num_local_experts=8,
                vocab_size=32000,
            )
        ).eval(),
        "Llama 12L (no conversion)": LlamaForCausalLM(
            LlamaConfig(
                hidden_size=768,
                intermediate_size=2048,
                num_hidden_layers=12,
                num_attention_heads=12,
                vocab_size=32000,
            )
        ).eval(),
    }


def _peer(layout: CheckpointLayout, live: str, tensor: torch.Tensor) -> dict[str, Any]:
    return dict(revert_weight_conversion(layout._model, {live: tensor}))


def _fingerprint(model: torch.nn.Module) -> Callable[[], object]:
    return lambda: module_source.fingerprint_module(model)


def _time(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    ours_split = CheckpointLayout.saved_tensors
    floor_lookup = module_source.layout_of_model
    print("| model | ours ms | peer ms | names as live ms | peer / ours | ours / floor |")
    print("|---|---|---|---|---|---|")
    for name, model in _models().items():
        module_source.fingerprint_module(model)  # warm: tables looked up once per model
        times: dict[str, list[float]] = {"ours": [], "peer": [], "floor": []}
        run = _fingerprint(model)
        for _ in range(args.repeat):
            times["ours"].append(_time(run))
            CheckpointLayout.saved_tensors = _peer  # type: ignore[method-assign]
            try:
                times["peer"].append(_time(run))
            finally:
                CheckpointLayout.saved_tensors = ours_split  # type: ignore[method-assign]
            module_source.layout_of_model = lambda _: None  # type: ignore[assignment]
            try:
                times["floor"].append(_time(run))
            finally:
                module_source.layout_of_model = floor_lookup
        ours, peer, floor = (statistics.median(times[k]) * 1000 for k in ("ours", "peer", "floor"))
        print(
            f"| {name} | {ours:.1f} | {peer:.1f} | {floor:.1f} | {peer / ours:.1f} | "
            f"{ours / floor:.2f} |"
        )


if __name__ == "__main__":
    main()
