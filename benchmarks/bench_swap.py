"""Hot swap: ``Registry.load`` against PEFT's ``load_adapter`` + ``set_adapter``, one run.

    python benchmarks/bench_swap.py [--hidden 1024] [--layers 4] [--rank 16] [--repeat 21]

Two rank-16 LoRA adapters on a Llama-shaped model (all seven projections of each layer
targeted). Each side swaps back and forth between them on the same model in the same
process, and the median of ``--repeat`` swaps is reported:

- PEFT: the model is wrapped once; a swap is ``load_adapter(dir, name)`` +
  ``set_adapter(name)`` + ``delete_adapter(previous)`` (so memory stays bounded, as a
  swap should);
- ours: a swap is ``handle.unload()`` + ``Registry.load(ref, model)`` (native: the
  adapter is merged into the weights, and the original weights are restored bit for bit
  on unload). The first load of each version hashes its blobs; later ones reuse that.

Also printed: one forward pass with each (a merged adapter costs nothing at inference;
PEFT's unmerged LoRA layers run the extra low-rank matmuls on every call).
"""

from __future__ import annotations

import argparse
import copy
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
    args = parser.parse_args()

    import peft
    import torch

    from registry import Registry

    warnings.simplefilter("ignore")
    work = Path(tempfile.mkdtemp(prefix="bench-swap-"))
    try:
        model = build_model(args.hidden, args.intermediate, args.layers)
        dirs = [save_lora(model, work / f"lora-{i}", args.rank, seed=i) for i in range(2)]
        reg = Registry.open(work / "registry", create=True)
        refs = [
            reg.push(d, name=f"swap-{i}", base_module=model).version.ref
            for i, d in enumerate(dirs)
        ]
        inputs = torch.randint(0, 1024, (1, 64))

        # Each side gets its own copy of the same model, and the swaps alternate (ours,
        # PEFT, ours, ...) so that a change in the machine's load hits both alike.
        theirs_model = copy.deepcopy(model)
        handle = reg.load(refs[0], model)

        def ours(i: int) -> None:
            nonlocal handle
            handle.unload()
            handle = reg.load(refs[(i + 1) % 2], model)

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

        ours(1)  # the first load of the second version hashes its blobs, once
        theirs(0)
        ours_times, peft_times = [], []
        for i in range(args.repeat):
            ours_times.append(_timed(ours, i))
            peft_times.append(_timed(theirs, i))
        ours_s, peft_s = statistics.median(ours_times), statistics.median(peft_times)
        with torch.no_grad():
            ours_fwd = _timed(model, inputs)
            peft_fwd = _timed(wrapped, inputs)
        handle.unload()

        print(f"model: hidden {args.hidden}, {args.layers} layers, rank {args.rank}, "
              f"{args.repeat} swaps each, torch threads {torch.get_num_threads()}")
        print("| swap | median s | × PEFT |")
        print("|---|---|---|")
        print(f"| PEFT `load_adapter` + `set_adapter` (+ `delete_adapter`) | {peft_s:.4f} | 1.00 |")
        print(f"| ours `unload()` + `Registry.load` (native merge) | {ours_s:.4f} | "
              f"**{ours_s / peft_s:.2f}** |")
        print(f"forward pass: ours {ours_fwd:.4f} s, PEFT {peft_fwd:.4f} s")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
