"""Hot swap: ``Registry.load`` against PEFT's ``load_adapter`` + ``set_adapter``, one run.

    python benchmarks/bench_swap.py [--quick] [--hidden 1024] [--layers 4] [--rank 16]
                                    [--repeat 21] [--forwards 11]

Two rank-16 LoRA adapters on a Llama-shaped model (all seven projections of each layer
targeted). Each side swaps back and forth between them on its own copy of the same model
in the same process, the sides alternating sample by sample, and the median of
``--repeat`` swaps is reported:

- PEFT: the model is wrapped once; a swap is ``load_adapter(dir, name)`` +
  ``set_adapter(name)`` + ``delete_adapter(previous)`` (so memory stays bounded, as a
  swap should);
- ours merged: ``handle.unload()`` + ``Registry.load(ref, model)`` (the adapter is merged
  into the weights; the original weights are restored bit for bit on unload); also as it
  was before the live model's fingerprint was kept between loads ("before");
- ours unmerged: ``handle.unload()`` + ``Registry.load(ref, model, merge=False)`` (forward
  hooks add the LoRA branch; no base weight is touched).

The first load of each version hashes its blobs; later ones reuse that. Then the median of
``--forwards`` forward passes of each (alternating): merged costs nothing extra at
inference, PEFT and unmerged run the low-rank matmuls on every call.
"""

from __future__ import annotations

import argparse
import copy
import os
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

from benchmarks.bench_combine import build_model, save_lora  # noqa: E402


def _timed(call: Any, arg: Any) -> float:
    start = time.perf_counter()
    call(arg)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--intermediate", type=int, default=2816)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=21)
    parser.add_argument("--forwards", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="5 swaps and 3 forward passes")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.forwards = 5, 3

    import peft
    import torch

    import registry.runtime.loader as loader_module
    from registry import Registry
    from registry.runtime.live_target import forget_target

    warnings.simplefilter("ignore")
    work = Path(tempfile.mkdtemp(prefix="bench-swap-"))
    try:
        model = build_model(args.hidden, args.intermediate, args.layers)
        dirs = [save_lora(model, work / f"lora-{i}", args.rank, seed=i) for i in range(2)]
        reg = Registry.open(work / "registry", create=True)
        refs = [
            reg.push(d, name=f"swap-{i}", base_module=model).version.ref for i, d in enumerate(dirs)
        ]
        inputs = torch.randint(0, 1024, (1, 64))

        # Each side gets its own copy of the same model, and the swaps alternate sample by
        # sample (PEFT, ours before, ours merged, ours unmerged, ...) so that a change in the
        # machine's load hits all alike.
        theirs_model = copy.deepcopy(model)
        hooked_model = copy.deepcopy(model)
        handles = {"merged": reg.load(refs[0], model)}
        handles["unmerged"] = reg.load(refs[0], hooked_model, merge=False)

        def swapper(key: str, target: Any, **options: Any) -> Any:
            def swap(i: int) -> None:
                handles[key].unload()
                handles[key] = reg.load(refs[(i + 1) % 2], target, **options)

            return swap

        merged_swap = swapper("merged", model)

        def before(i: int) -> None:
            # The merged swap as it was before the live model's fingerprint and the
            # adapter's shapes were kept between loads: both taken again on every load.
            forget_target(model)
            loader_module._shapes.clear()
            merged_swap(i)

        wrapped = peft.PeftModel.from_pretrained(theirs_model, str(dirs[0]), adapter_name="a0")
        current = ["a0"]
        count = [0]

        def theirs(i: int) -> None:
            count[0] += 1
            name = f"a{count[0]}"
            wrapped.load_adapter(str(dirs[(i + 1) % 2]), adapter_name=name)
            wrapped.set_adapter(name)
            wrapped.delete_adapter(current[0])
            current[0] = name

        sides = {
            "peft": theirs,
            "before": before,
            "merged": merged_swap,
            "unmerged": swapper("unmerged", hooked_model, merge=False),
        }
        for i, side in enumerate(sides.values()):  # the first load of the second version
            side(i % 2)  # hashes its blobs, once
        times: dict[str, list[float]] = {key: [] for key in sides}
        for i in range(args.repeat):
            for key, side in sides.items():
                times[key].append(_timed(side, i))
        swap_s = {key: statistics.median(found) for key, found in times.items()}
        runs = {"peft": wrapped, "merged": model, "unmerged": hooked_model}
        forward: dict[str, list[float]] = {key: [] for key in runs}
        with torch.no_grad():
            for run in runs.values():
                run(inputs)  # warm-up
            for _ in range(args.forwards):
                for key, run in runs.items():
                    forward[key].append(_timed(run, inputs))
            same = torch.equal(wrapped(inputs).logits, hooked_model(inputs).logits)
        fwd_s = {key: statistics.median(found) for key, found in forward.items()}
        for handle in handles.values():
            handle.unload()

        load = os.getloadavg()
        print(
            f"model: hidden {args.hidden}, {args.layers} layers, rank {args.rank}, "
            f"{args.repeat} swaps and {args.forwards} forward passes each, torch threads "
            f"{torch.get_num_threads()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        peft_s, peft_f = swap_s["peft"], fwd_s["peft"]
        print("| | swap, median s | swap × PEFT | forward, median s | forward × PEFT |")
        print("|---|---|---|---|---|")
        rows = [
            ("PEFT `load_adapter` + `set_adapter` (+ `delete_adapter`)", "peft", "peft"),
            ("ours merged, fingerprint taken on every load (before)", "before", None),
            ("ours `unload()` + `Registry.load` (merged)", "merged", "merged"),
            ("ours `unload()` + `Registry.load(merge=False)`", "unmerged", "unmerged"),
        ]
        for label, swap_key, fwd_key in rows:
            fwd = (
                f"{fwd_s[fwd_key]:.4f} | {fwd_s[fwd_key] / peft_f:.2f}"
                if fwd_key is not None
                else "| "
            )
            swap = swap_s[swap_key]
            print(f"| {label} | {swap:.4f} | **{swap / peft_s:.2f}** | {fwd} |")
        print(f"unmerged logits equal to PEFT's: {same}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
