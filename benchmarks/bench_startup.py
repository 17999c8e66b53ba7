"""Start-up of the ``adapters`` command against ``python -c pass``, in one run.

    python benchmarks/bench_startup.py [--repeat 15] [--compare /path/to/other/checkout]

Each command runs in a new process (what a user or a script pays), with a small
registry of three versions; the figure is the median wall time of ``--repeat`` runs,
reported as a ratio to ``python -c pass`` measured in the same run. ``--compare``
times the same commands from another checkout (e.g. the previous release) side by
side. The modules each command imported are counted too (``-X importtime``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_adapters(directory: Path) -> list[Path]:
    import torch

    from registry.formats import write_peft_adapter

    made = []
    for index in range(3):
        generator = torch.Generator().manual_seed(index)
        tensors = {
            f"base_model.model.model.layers.0.self_attn.q_proj.lora_{ab}.weight": torch.randn(
                shape, generator=generator
            )
            for ab, shape in (("A", (4, 64)), ("B", (64, 4)))
        }
        config = {
            "peft_type": "LORA",
            "r": 4,
            "lora_alpha": 8,
            "target_modules": ["q_proj"],
            "base_model_name_or_path": "tiny/llama",
            "task_type": "CAUSAL_LM",
        }
        write_peft_adapter(directory / f"a{index}", config, tensors)
        made.append(directory / f"a{index}")
    return made


# Run from an empty directory: `python -m` puts the working directory first on sys.path,
# which would shadow PYTHONPATH (the tree being timed).
CWD = Path(tempfile.gettempdir())


def median_ms(command: list[str], env: dict[str, str], repeat: int) -> float:
    subprocess.run(command, env=env, check=True, capture_output=True, cwd=CWD)  # warm caches
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, env=env, check=True, capture_output=True, cwd=CWD)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def imported(command: list[str], env: dict[str, str]) -> tuple[int, bool, bool]:
    """(modules imported, SQLAlchemy among them, torch among them)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *command[1:]],
        env=env,
        capture_output=True,
        text=True,
        cwd=CWD,
    )
    names = [
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line and "cumulative" not in line
    ]
    return len(names), "sqlalchemy" in names, "torch" in names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--compare", type=Path, help="Another checkout to time side by side.")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    try:
        sources = write_adapters(work / "src")
        commands = {
            "--help": ["--help"],
            "--version": ["--version"],
            "list": ["list"],
            "show": ["show", "demo/a1@1"],
            "verify": ["verify", "demo/a1@1"],
        }
        trees = {"this": ROOT}
        if args.compare is not None:
            trees["compare"] = args.compare.resolve()
        base_env = {k: v for k, v in os.environ.items() if k != "ADAPTERS_DATABASE_URL"}
        homes = {}
        for tree, root in trees.items():
            # Each tree's registry is made by its own code (their schemas may differ).
            home = work / f"home-{tree}"
            env = {**base_env, "PYTHONPATH": str(root), "ADAPTERS_HOME": str(home)}
            cli = [sys.executable, "-m", "registry.cli"]
            subprocess.run(
                [*cli, "init", str(home)], env=env, check=True, capture_output=True, cwd=CWD
            )
            for index, directory in enumerate(sources):
                push = [*cli, "push", str(directory), "--name", f"demo/a{index}"]
                subprocess.run(
                    [*push, "--eval", "accuracy=0.9"],
                    env=env,
                    check=True,
                    capture_output=True,
                    cwd=CWD,
                )
            homes[tree] = env
        t_pass = median_ms([sys.executable, "-c", "pass"], base_env, args.repeat)
        rows = []
        results: dict[str, object] = {"python_pass_ms": round(t_pass, 1)}
        for tree, env in homes.items():
            for label, extra in commands.items():
                command = [sys.executable, "-m", "registry.cli", *extra]
                ms = median_ms(command, env, args.repeat)
                count, sqlalchemy, torch = imported(command, env)
                rows.append((tree, label, ms, ms / t_pass, count, sqlalchemy, torch))
                results[f"{tree}:{label}"] = {"ms": round(ms, 1), "ratio": round(ms / t_pass, 2)}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    load = os.getloadavg()
    print(
        f"median of {args.repeat} runs each; load average {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f} on {os.cpu_count()} CPU(s); python -c pass: {t_pass:.0f} ms"
    )
    print("| tree | command | ms | x `python -c pass` | modules | SQLAlchemy | torch |")
    print("|---|---|---|---|---|---|---|")
    for tree, label, ms, ratio, count, sqlalchemy, torch in rows:
        print(
            f"| {tree} | `adapters {label}` | {ms:.0f} | {ratio:.2f} | {count} | "
            f"{'yes' if sqlalchemy else 'no'} | {'yes' if torch else 'no'} |"
        )
    results["load_average"] = round(load[0], 2)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
