"""The merge of a hot swap, A/B: one ``addmm`` per weight against row blocks, one run.

    python benchmarks/bench_merge_blocks.py [--quick] [--threads 1]

A native load writes ``W0 + B @ A`` into a kept buffer for every adapted weight (float32,
the projections of a Llama layer with hidden 1024 and intermediate 2816, rank 16). The
schemes, alternated sample by sample so the machine's load falls on each alike:

- ``addmm``: ``torch.addmm(W0, B, A, out=buffer)`` (what the loader does);
- ``blocks <size>``: the same, row block by row block, so that each block of ``W0`` is
  read and its merged value written while in cache;
- ``mm + add``: ``torch.mm(B, A, out=buffer)`` then ``buffer += W0``.

Each is checked bit for bit against ``addmm`` (a scheme that differs cannot replace it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="5 samples instead of 21")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    shapes = [(1024, 1024)] * 4 + [(2816, 1024)] * 2 + [(1024, 2816)]
    weights = [torch.randn(s, generator=generator) for s in shapes]
    bs = [torch.randn(s[0], 16, generator=generator) for s in shapes]
    as_ = [torch.randn(16, s[1], generator=generator) for s in shapes]
    outs = [torch.empty(s) for s in shapes]

    def addmm() -> None:
        for w, b, a, o in zip(weights, bs, as_, outs, strict=True):
            torch.addmm(w, b, a, out=o)

    def blocks(size: int) -> Callable[[], None]:
        def run() -> None:
            for w, b, a, o in zip(weights, bs, as_, outs, strict=True):
                rows = max(1, size // (w.shape[1] * 4))
                for i in range(0, w.shape[0], rows):
                    torch.addmm(w[i : i + rows], b[i : i + rows], a, out=o[i : i + rows])

        return run

    def mm_add() -> None:
        for w, b, a, o in zip(weights, bs, as_, outs, strict=True):
            torch.mm(b, a, out=o)
            o.add_(w)

    schemes: dict[str, Callable[[], None]] = {
        "addmm": addmm,
        "blocks 64 KiB": blocks(64 << 10),
        "blocks 256 KiB": blocks(256 << 10),
        "blocks 1 MiB": blocks(1 << 20),
        "mm + add": mm_add,
    }
    addmm()
    expected = [o.clone() for o in outs]
    exact = {}
    for name, run in schemes.items():
        run()
        exact[name] = all(torch.equal(o, e) for o, e in zip(outs, expected, strict=True))
    times: dict[str, list[float]] = {name: [] for name in schemes}
    for _ in range(5 if args.quick else 21):
        for name, run in schemes.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["addmm"])
    print(f"torch threads {args.threads}; one layer's 7 weights per sample")
    print("| scheme | median ms | × addmm | bit-identical |")
    print("|---|---|---|---|")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"| {name} | {median * 1000:.2f} | {median / base:.2f} | {exact[name]} |")


if __name__ == "__main__":
    main()
