"""What re-hashing deduplicated blobs costs a push, against trusting them as before.

    python benchmarks/bench_dedup_rehash.py [--mib 16 256] [--repeat 5]

A push of a directory whose weights are already stored (another name, same bytes)
reads the source, writes a temp copy while hashing it, and now also re-hashes the
stored blob before deduplicating against it. The peer is the same push with the stored
blob trusted unread (``BlobStore.check`` skipped), which is what push did before.
Both run side by side in one process, alternating, on one weights file per size; the
median of ``--repeat`` runs is reported, with the ratio.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_adapter(directory: Path, mib: int) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    directory.mkdir(parents=True)
    rows = mib * 2**20 // (4 * 1024)
    rng = np.random.default_rng(0)
    tensors = {
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": rng.standard_normal(
            (rows // 2, 1024), dtype=np.float32
        ),
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": rng.standard_normal(
            (1024, rows // 2), dtype=np.float32
        ),
    }
    save_file(tensors, str(directory / "adapter_model.safetensors"), metadata={"format": "pt"})
    config = {
        "peft_type": "LORA",
        "base_model_name_or_path": "bench/base",
        "r": rows // 2,
        "lora_alpha": 8,
        "target_modules": ["q_proj"],
    }
    (directory / "adapter_config.json").write_text(json.dumps(config))
    return directory


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, nargs="+", default=[16, 256])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    from registry import Registry
    from registry.store.blobs import BlobStore

    original_check = BlobStore.check
    print(f"load: {os.getloadavg()}")
    for mib in args.mib:
        with tempfile.TemporaryDirectory() as tmp:
            source = make_adapter(Path(tmp) / "src", mib)
            with Registry.open(Path(tmp) / "home", create=True) as registry:
                registry.push(source, name="first")
                times: dict[str, list[float]] = {"re-hash": [], "trust": []}
                for index in range(args.repeat):
                    for mode in ("re-hash", "trust"):
                        BlobStore.check = (  # type: ignore[method-assign]
                            original_check if mode == "re-hash" else (lambda *a, **k: None)
                        )
                        began = time.perf_counter()
                        registry.push(source, name=f"{mode}-{index}")
                        times[mode].append(time.perf_counter() - began)
                BlobStore.check = original_check  # type: ignore[method-assign]
        rehash, trust = (statistics.median(times[m]) for m in ("re-hash", "trust"))
        print(
            f"{mib:5d} MiB  re-hash {rehash * 1000:8.1f} ms  trust {trust * 1000:8.1f} ms  "
            f"ratio {rehash / trust:.2f}"
        )


if __name__ == "__main__":
    main()
