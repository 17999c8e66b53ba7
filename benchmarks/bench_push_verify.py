"""Push and verify of a ~200 MB LoRA adapter against plain ``sha256sum`` of its files.

    python benchmarks/bench_push_verify.py [--size-mb 200] [--repeat 5]

Every timing is the median of ``--repeat`` runs with a warm page cache (each
tool reads the same bytes; a cold cache would measure the disk, not the tool).
``push`` runs into a fresh registry each time so it always stores every blob.
Reported as ratios to ``sha256sum`` over the same files.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HIDDEN = 4096
INTERMEDIATE = 11008
RANK = 64


def write_adapter(directory: Path, size_mb: int) -> Path:
    import torch

    from registry.formats import write_peft_adapter

    shapes = {
        "self_attn.q_proj": (HIDDEN, HIDDEN),
        "self_attn.k_proj": (HIDDEN, HIDDEN),
        "self_attn.v_proj": (HIDDEN, HIDDEN),
        "self_attn.o_proj": (HIDDEN, HIDDEN),
        "mlp.gate_proj": (INTERMEDIATE, HIDDEN),
        "mlp.up_proj": (INTERMEDIATE, HIDDEN),
        "mlp.down_proj": (HIDDEN, INTERMEDIATE),
    }
    per_layer = sum(RANK * (o + i) * 4 for o, i in shapes.values())
    layers = max(1, round(size_mb * 1024 * 1024 / per_layer))
    generator = torch.Generator().manual_seed(0)
    tensors = {}
    for layer in range(layers):
        for module, (out_f, in_f) in shapes.items():
            key = f"base_model.model.model.layers.{layer}.{module}"
            tensors[f"{key}.lora_A.weight"] = torch.randn(RANK, in_f, generator=generator)
            tensors[f"{key}.lora_B.weight"] = torch.randn(out_f, RANK, generator=generator)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": "bench/llama-7b-shaped",
        "revision": None,
        "r": RANK,
        "lora_alpha": 2 * RANK,
        "target_modules": sorted({m.split(".")[-1] for m in shapes}),
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "inference_mode": True,
    }
    write_peft_adapter(directory, config, tensors)
    return directory


def median_seconds(
    action: Callable[[], object], repeat: int, setup: Callable[[], None] | None = None
) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from registry import Registry

    work = Path(tempfile.mkdtemp(prefix="bench-push-"))
    try:
        adapter = write_adapter(work / "adapter", args.size_mb)
        files = sorted(str(p) for p in adapter.iterdir())
        size = sum(Path(f).stat().st_size for f in files)

        def sha256sum() -> None:
            subprocess.run(["sha256sum", *files], check=True, stdout=subprocess.DEVNULL)

        sha256sum()  # warm the page cache
        t_sha = median_seconds(sha256sum, args.repeat)

        # coreutils' sha256sum may lack the CPU's SHA instructions; OpenSSL (which Python's
        # hashlib uses) has them, so report it too for a like-for-like hashing floor.
        def openssl() -> None:
            subprocess.run(
                ["openssl", "dgst", "-sha256", *files], check=True, stdout=subprocess.DEVNULL
            )

        t_openssl = median_seconds(openssl, args.repeat) if shutil.which("openssl") else None

        state: dict[str, Registry] = {}

        def fresh_registry() -> None:
            if "reg" in state:
                state["reg"].close()
            home = work / "home"
            shutil.rmtree(home, ignore_errors=True)
            Path(f"{home}.db").unlink(missing_ok=True)
            state["reg"] = Registry.open(home, create=True, database_url=f"sqlite:///{home}.db")

        t_push = median_seconds(
            lambda: state["reg"].push(adapter, name="bench"), args.repeat, fresh_registry
        )
        t_verify = median_seconds(lambda: state["reg"].verify("bench"), args.repeat)
        report = state["reg"].verify("bench")
        assert report.ok, report.checks
        state["reg"].close()

        env_home = work / "cli-home"
        cli = [sys.executable, "-m", "registry.cli", "--registry", str(env_home)]

        def cli_push() -> None:
            subprocess.run(
                [*cli, "push", str(adapter), "--name", "bench"], check=True, capture_output=True
            )

        def cli_fresh() -> None:
            shutil.rmtree(env_home, ignore_errors=True)
            subprocess.run([*cli[:3], "init", str(env_home)], check=True, capture_output=True)

        t_cli_push = median_seconds(cli_push, args.repeat, cli_fresh)
        t_cli_verify = median_seconds(
            lambda: subprocess.run([*cli, "verify", "bench"], check=True, capture_output=True),
            args.repeat,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)

    results = {
        "adapter_bytes": size,
        "sha256sum_s": round(t_sha, 3),
        "openssl_sha256_s": None if t_openssl is None else round(t_openssl, 3),
        "push_api_s": round(t_push, 3),
        "verify_api_s": round(t_verify, 3),
        "push_cli_s": round(t_cli_push, 3),
        "verify_cli_s": round(t_cli_verify, 3),
        "push_api_ratio": round(t_push / t_sha, 2),
        "verify_api_ratio": round(t_verify / t_sha, 2),
        "push_cli_ratio": round(t_cli_push / t_sha, 2),
        "verify_cli_ratio": round(t_cli_verify / t_sha, 2),
    }
    mb = size / 1e6
    print(f"adapter: {mb:.0f} MB in {len(files)} files; median of {args.repeat} warm runs")
    print("| operation | seconds | x sha256sum |")
    print("|---|---|---|")
    print(f"| sha256sum | {t_sha:.3f} | 1.00 |")
    if t_openssl is not None:
        print(f"| openssl dgst -sha256 | {t_openssl:.3f} | {t_openssl / t_sha:.2f} |")
    for label, key in (
        ("push (Python API)", "push_api"),
        ("verify (Python API)", "verify_api"),
        ("adapters push (CLI process)", "push_cli"),
        ("adapters verify (CLI process)", "verify_cli"),
    ):
        print(f"| {label} | {results[key + '_s']:.3f} | {results[key + '_ratio']:.2f} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
