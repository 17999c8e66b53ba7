"""Push throughput with 1, 4 and 8 concurrent writer processes, on SQLite and PostgreSQL.

    python benchmarks/bench_writers.py [--pushes 60] [--writers 1,4,8]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:55432/postgres]

Each writer is its own process with its own ``Registry`` and pushes ``--pushes``
distinct small LoRA adapters (two blobs each, ~2 KB; the shared config blob is
deduplicated), either all under one shared name (version numbers contended: the
writers of one name take turns) or each writer under its own name. All writers
start together; throughput is versions recorded per second of wall clock from the
start signal to the last writer's end. Every run uses a fresh registry (a new SQLite
file, or a new PostgreSQL database created from ``--postgres-url`` and dropped after).
The PostgreSQL URL defaults to ``ADAPTERS_TEST_POSTGRES_URL``; without one only SQLite
runs. The adapters are written once, up front, so writers never import torch.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_adapters(directory: Path, count: int) -> list[Path]:
    import torch

    from registry.formats import write_peft_adapter

    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": "bench/base",
        "r": 2,
        "lora_alpha": 4,
        "target_modules": ["q_proj"],
        "inference_mode": True,
    }
    paths = []
    for index in range(count):
        generator = torch.Generator().manual_seed(index)
        key = "base_model.model.model.layers.0.self_attn.q_proj"
        tensors = {
            f"{key}.lora_A.weight": torch.randn(2, 16, generator=generator),
            f"{key}.lora_B.weight": torch.randn(16, 2, generator=generator),
        }
        path = directory / f"a{index}"
        write_peft_adapter(path, config, tensors)
        paths.append(path)
    return paths


def worker(home: str, url: str, go: str, name: str, directories: list[str]) -> None:
    from registry import Registry

    registry = Registry.open(home, database_url=url)
    while not Path(go).exists():
        time.sleep(0.002)
    for directory in directories:
        registry.push(directory, name=name)
    registry.close()


@contextmanager
def database(backend: str, work: Path, admin_url: str | None) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{work / 'catalog.db'}"
        return
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    assert admin_url is not None
    name = f"bench_writers_{uuid.uuid4().hex[:10]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run(
    backend: str, writers: int, adapters: list[Path], admin_url: str | None, shared: bool
) -> dict[str, float]:
    from registry import Registry

    work = Path(tempfile.mkdtemp(prefix="bench-writers-"))
    try:
        with database(backend, work, admin_url) as url:
            home = work / "home"
            Registry.open(home, create=True, database_url=url).close()
            go = work / "go"
            per = len(adapters) // writers
            procs = []
            for w in range(writers):
                mine = [str(p) for p in adapters[w * per : (w + 1) * per]]
                name = "bench/shared" if shared else f"bench/writer-{w}"
                args = [str(home), url, str(go), name, json.dumps(mine)]
                procs.append(subprocess.Popen([sys.executable, __file__, "--worker", *args]))
            time.sleep(1.0 + 0.2 * writers)  # interpreters start and open the registry
            started = time.perf_counter()
            go.touch()
            for proc in procs:
                if proc.wait() != 0:
                    raise SystemExit(f"a writer failed ({backend}, {writers} writers)")
            seconds = time.perf_counter() - started
            with Registry.open(home, database_url=url) as registry:
                versions = registry.catalog.count_versions()
            assert versions == per * writers, (versions, per * writers)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"versions": versions, "seconds": round(seconds, 2), "per_s": versions / seconds}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        home, url, go, name, directories = sys.argv[2:7]
        worker(home, url, go, name, json.loads(directories))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pushes", type=int, default=240, help="Versions per run, in total.")
    parser.add_argument("--writers", default="1,4,8")
    parser.add_argument("--postgres-url", default=os.environ.get("ADAPTERS_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    counts = [int(w) for w in args.writers.split(",")]
    backends = ["sqlite"] + (["postgresql"] if args.postgres_url else [])
    source = Path(tempfile.mkdtemp(prefix="bench-adapters-"))
    try:
        adapters = write_adapters(source, args.pushes)
        results: dict[str, dict[int, dict[str, float]]] = {}
        for backend in backends:
            for shared in (True, False):
                key = f"{backend}, {'one shared name' if shared else 'a name per writer'}"
                for writers in counts:
                    results.setdefault(key, {})[writers] = run(
                        backend, writers, adapters, args.postgres_url, shared
                    )
    finally:
        shutil.rmtree(source, ignore_errors=True)
    print(
        f"{args.pushes} pushes per run; {os.cpu_count()} CPU(s); "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print("| backend | " + " | ".join(f"{w} writer{'s' * (w > 1)}" for w in counts) + " |")
    print("|---|" + "---|" * len(counts))
    for backend, by_writers in results.items():
        cells = " | ".join(f"{by_writers[w]['per_s']:.1f} versions/s" for w in counts)
        print(f"| {backend} | {cells} |")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
