"""Operators with 1 and 2 torch threads, idle and with one core kept busy, in one run.

    python benchmarks/bench_threads.py [--repeat 5] [--hidden 2048]

The heavy step of ``combine --method svd``, ``resize`` and ``extract`` is a truncated
SVD of a dense delta; ``merge`` is an ``addmm`` per weight. Each is timed with 1 and 2
threads alternately (medians of ``--repeat``), first on the machine as it is, then with a
busy-loop process pinned on no particular core (one core's worth of load). Prints what
``registry.ops.threads.operator_threads`` picks in each state.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _spin(stop: Any) -> None:
    while not stop.is_set():
        pass


def _time(threads: int, job: Any) -> float:
    import torch

    torch.set_num_threads(threads)
    start = time.perf_counter()
    job()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--hidden", type=int, default=2048)
    args = parser.parse_args()

    import torch

    from registry.ops.threads import operator_threads

    h = args.hidden
    gen = torch.Generator().manual_seed(0)
    delta = torch.randn(h, 16, generator=gen) @ torch.randn(16, h, generator=gen)
    delta += 0.01 * torch.randn(h, h, generator=gen)
    weight = torch.randn(h, h, generator=gen)
    b, a = torch.randn(h, 16, generator=gen), torch.randn(16, h, generator=gen)
    jobs = {
        "svd (combine --method svd, resize, extract)": lambda: torch.linalg.svd(
            delta, full_matrices=False
        ),
        "addmm x8 (merge)": lambda: [torch.addmm(weight, b, a) for _ in range(8)],
    }
    print(f"{os.cpu_count()} CPU(s), hidden {h}, medians of {args.repeat}")
    print("| state | load avg | operator | 1 thread s | 2 threads s | 2 / 1 | rule picks |")
    print("|---|---|---|---|---|---|---|")
    for state in ("as is", "one core busy"):
        stop = multiprocessing.Event()
        spinner = None
        if state == "one core busy":
            spinner = multiprocessing.Process(target=_spin, args=(stop,))
            spinner.start()
            time.sleep(20)  # let the 1-minute load average see it
        try:
            for label, job in jobs.items():
                job()
                one, two = [], []
                for _ in range(args.repeat):
                    one.append(_time(1, job))
                    two.append(_time(2, job))
                m1, m2 = statistics.median(one), statistics.median(two)
                print(
                    f"| {state} | {os.getloadavg()[0]:.1f} | {label} | {m1:.3f} | {m2:.3f} | "
                    f"{m2 / m1:.2f} | {operator_threads()} |"
                )
        finally:
            stop.set()
            if spinner is not None:
                spinner.join()


if __name__ == "__main__":
    main()
