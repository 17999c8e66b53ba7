"""The timeline of one push: when each phase of ``Registry.push`` starts and ends.

Used by ``bench_object_store.py --phases``. Each phase is a function of the push path
wrapped for the duration of one push with a timer; the wrappers call the originals, so
the push does exactly what it does unwrapped (plus a clock read per call).
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

# (phase, module or class, attribute): what each phase of a push is.
PHASES: tuple[tuple[str, str, str], ...] = (
    ("pre-hash (thread)", "registry.store.prehash:BackgroundHashes", "_run"),
    ("format checks (all)", "registry.formats", "read_adapter_dir"),
    ("  header parse", "registry.formats.reader", "inspect_safetensors_header"),
    ("  tensor checks", "registry.formats.reader", "check_tensors"),
    ("  NaN/Inf scan", "registry.formats.reader", "_nonfinite"),
    ("  NaN/Inf scan (beside upload)", "registry.store.push", "_scan_weights"),
    ("base lookup", "registry.store.push", "_find_base"),
    ("wait for digest", "registry.store.prehash:BackgroundHashes", "digest"),
    ("lease", "registry.store.gc:PushLeases", "take"),
    ("HEAD", "registry.store.object_blobs:ObjectBlobStore", "_head"),
    ("upload (multipart)", "registry.store.object_blobs:ObjectBlobStore", "_put_large"),
    ("small put (config)", "registry.store.object_blobs:ObjectBlobStore", "_put_small"),
    ("base record", "registry.store.push", "_record_base"),
    ("trainer state", "registry.store.push", "_trainer_record"),
    ("catalog commit", "registry.store.catalog.catalog:Catalog", "insert_version"),
)


def _owner(spec: str) -> Any:
    import importlib

    module_name, _, class_name = spec.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, class_name) if class_name else module


@contextlib.contextmanager
def recorded(events: list[tuple[str, float, float]]) -> Iterator[None]:
    """Wraps every phase found in ``PHASES``; each call appends (phase, start, end)."""
    lock = threading.Lock()
    undo: list[tuple[Any, str, Any]] = []

    def timed(phase: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                with lock:
                    events.append((phase, start, time.perf_counter()))

        return wrapper

    for phase, spec, attribute in PHASES:
        owner = _owner(spec)
        original = owner.__dict__.get(attribute) if isinstance(owner, type) else None
        original = original or getattr(owner, attribute, None)
        if original is None:
            continue  # a phase this version of the push does not have
        undo.append((owner, attribute, original))
        setattr(owner, attribute, timed(phase, original))
    try:
        yield
    finally:
        for owner, attribute, original in reversed(undo):
            setattr(owner, attribute, original)


def timeline(push: Callable[[], object]) -> list[str]:
    """Lines of one ``push()``'s phases in start order, times from the push's start."""
    events: list[tuple[str, float, float]] = []
    with recorded(events):
        start = time.perf_counter()
        push()
        end = time.perf_counter()
    lines = [f"{'phase':32} {'start':>7} {'end':>7} {'took':>7}"]
    for phase, begin, finish in sorted(events, key=lambda e: e[1]):
        lines.append(f"{phase:32} {begin - start:7.3f} {finish - start:7.3f} {finish - begin:7.3f}")
    lines.append(f"{'whole push':32} {0:7.3f} {end - start:7.3f} {end - start:7.3f}")
    return lines


def _read_sha256(path: Path) -> str:
    """The pre-hash as it was: 8 MiB reads, each a new bytes object."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while data := handle.read(8 << 20):
            digest.update(data)
    return digest.hexdigest()


def prehash_rounds(directory: Path, weights: Path, repeat: int) -> list[str]:
    """Seconds until the digest of ``weights`` is known, hashed on a thread while the
    format checks of ``directory`` run on this one (as in a push), by the 8 MiB reads
    of before and by the memory map of now, alternating; medians of ``repeat``."""
    from registry.formats import read_adapter_dir
    from registry.store.prehash import mapped_sha256

    ways: dict[str, Callable[[Path], object]] = {
        "pre-hash, 8 MiB reads (before)": _read_sha256,
        "pre-hash, memory map (now)": mapped_sha256,
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(repeat):
        for name, way in ways.items():
            finished: list[float] = []

            def hash_it(way: Callable[[Path], object] = way, into: list[float] = finished) -> None:
                way(weights)
                into.append(time.perf_counter())

            start = time.perf_counter()
            thread = threading.Thread(target=hash_it)
            thread.start()
            read_adapter_dir(directory)
            thread.join()
            times[name].append(finished[0] - start)
    medians = {name: statistics.median(values) for name, values in times.items()}
    before, now = medians.values()
    lines = [f"{name:32} {seconds:23.3f}" for name, seconds in medians.items()]
    lines.append(f"{'pre-hash now / before':32} {now / before:22.2f}x")
    return lines
