"""Fuzz target for the format readers, and a standalone mutation fuzzer around it.

``fuzz_once(data)`` feeds bytes to the readers of untrusted adapter files and fails (raises
``FuzzFinding``) when anything other than a ``RegistryError`` escapes, when a reader that
returns problems raises instead, or when an adapter that is accepted cannot be turned into a
manifest. The first byte picks the target and the seed adapter; the rest is the input:

    target 0: the bytes are a safetensors file (header reader, NaN/Inf scan)
    target 1: the bytes are adapter_config.json beside the seed's valid weights
    target 2: the bytes are the weights beside the seed's valid config

tests/test_fuzz.py drives it with hypothesis for a bounded time in CI. For a longer run:

    cd tests && python -m support.fuzz --seconds 600 [--seed 1]

which mutates the seed adapters (bit flips, splices, truncations, JSON-aware edits) and writes
any input that fails to ``fuzz-findings/`` for a regression test.
"""

from __future__ import annotations

import json
import random
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from registry.errors import RegistryError
from registry.formats import find_nonfinite, read_adapter_files, read_safetensors_header
from registry.formats.config_file import CONFIG_NAME, parse_config
from registry.formats.safetensors_header import inspect_safetensors_header
from registry.store.manifest import canonical_json
from support.handmade import KINDS, adapter_files

SEED_KINDS: tuple[str, ...] = tuple(sorted(KINDS))
TARGETS = 3


class FuzzFinding(AssertionError):
    """An input that made a reader misbehave."""


_SEEDS: list[dict[str, bytes]] = [adapter_files(kind) for kind in SEED_KINDS]


def _seed(index: int) -> dict[str, bytes]:
    return _SEEDS[index % len(_SEEDS)]


def split(data: bytes) -> tuple[int, dict[str, bytes], bytes]:
    """(target, seed files, payload) encoded in ``data``."""
    selector = data[0] if data else 0
    return selector % TARGETS, _seed(selector // TARGETS), data[1:]


def encode(target: int, seed_index: int, payload: bytes) -> bytes:
    """The input ``split`` decodes back to (target, seed, payload)."""
    selector = (seed_index % len(_SEEDS)) * TARGETS + target
    assert selector < 256
    return bytes([selector]) + payload


def fuzz_once(data: bytes) -> None:
    """Run one input through the readers; raise ``FuzzFinding`` on misbehaviour."""
    target, seed, payload = split(data)
    with tempfile.TemporaryDirectory(prefix="fuzz-") as tmp:
        root = Path(tmp)
        try:
            if target == 0:
                _safetensors(root / "weights.safetensors", payload)
            else:
                _adapter(root, seed, payload, replace_config=target == 1)
        except RegistryError:
            pass
        except FuzzFinding:
            raise
        except Exception as exc:  # RecursionError and MemoryError included
            raise FuzzFinding(f"{type(exc).__name__} escaped a reader: {exc!r}"[:500]) from exc


def _safetensors(path: Path, payload: bytes) -> None:
    path.write_bytes(payload)
    report = inspect_safetensors_header(path)  # returns problems; never raises
    try:
        tensors, _ = read_safetensors_header(path)
    except RegistryError:
        if not report.problems:
            raise FuzzFinding(
                "read_safetensors_header raised for a header without problems"
            ) from None
        return
    if report.problems:
        raise FuzzFinding("read_safetensors_header accepted a header with problems")
    for info in tensors.values():
        if not 0 <= info.offsets[0] <= info.offsets[1]:
            raise FuzzFinding(f"accepted backwards offsets {info.offsets}")
    find_nonfinite(path)


def _adapter(root: Path, seed: dict[str, bytes], payload: bytes, *, replace_config: bool) -> None:
    weights_name = next(name for name in seed if name != CONFIG_NAME)
    files = dict(seed)
    if replace_config:
        files[CONFIG_NAME] = payload
        parse_config(payload)  # returns problems; never raises
    else:
        files[weights_name] = payload
    paths = {}
    for name, data in files.items():
        (root / name).write_bytes(data)
        paths[name] = root / name
    source = read_adapter_files(paths, label="fuzz")
    # What push does next with an accepted adapter: these must not fail either.
    canonical_json(source.config)
    parsed, problems = parse_config(source.config_bytes)
    if problems or parsed != source.config:
        raise FuzzFinding(f"the stored config bytes do not read back: {problems}")


# -- the standalone mutation fuzzer ----------------------------------------------------------

Mutator = Callable[[random.Random, bytes], bytes]


def _flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return bytes([rng.randrange(256)])
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def _byte(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    out[rng.randrange(len(out))] = rng.choice([0, 0x7F, 0x80, 0xFF, ord("["), ord('"'), ord("-")])
    return bytes(out)


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(len(data) + 1)]


def _splice(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    begin = rng.randrange(len(data))
    end = min(len(data), begin + rng.randint(1, 64))
    insert = data[rng.randrange(len(data)) :][: rng.randint(0, 64)]
    return data[:begin] + insert + data[end:]


def _length(rng: random.Random, data: bytes) -> bytes:
    # Lie about the header length, the first thing a safetensors reader trusts.
    if len(data) < 8:
        return data
    (length,) = struct.unpack("<Q", data[:8])
    lie = rng.choice([0, 1, length - 1, length + 1, length + 8, len(data), 2**63, 2**64 - 1])
    return struct.pack("<Q", max(0, min(lie, 2**64 - 1))) + data[8:]


_JSON_VALUES = [
    "null",
    "true",
    "-1",
    "0",
    "1e999",
    "18446744073709551616",
    '"\\ud800"',
    '"\\u0000"',
    "[]",
    "{}",
    "[[[[[[[[]]]]]]]]",
    '"F32"',
    "3.5",
]


def _json_edit(rng: random.Random, data: bytes) -> bytes:
    # Replace one JSON scalar (a number or a string) with a hostile one.
    text = data.decode("latin-1")
    spots = [i for i, c in enumerate(text) if c in '0123456789"'][:5000]
    if not spots:
        return data
    start = rng.choice(spots)
    end = start + 1
    if text[start] == '"':
        close = text.find('"', start + 1)
        end = close + 1 if close != -1 else end
    else:
        while end < len(text) and text[end] in "0123456789.eE+-":
            end += 1
    return (text[:start] + rng.choice(_JSON_VALUES) + text[end:]).encode("latin-1")


def _header_edit(rng: random.Random, data: bytes) -> bytes:
    # A JSON edit inside a safetensors header, with the length kept truthful so that the
    # input gets past the length check to the declarations behind it.
    if len(data) < 8:
        return data
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        return _json_edit(rng, data)
    header = _json_edit(rng, data[8 : 8 + length])
    return struct.pack("<Q", len(header)) + header + data[8 + length :]


BYTE_MUTATORS: tuple[Mutator, ...] = (_flip, _byte, _truncate, _splice, _length)


def mutate(rng: random.Random) -> bytes:
    """One mutated input for ``fuzz_once``: a seed file with one to three mutations."""
    seed_index = rng.randrange(len(_SEEDS))
    target = rng.randrange(TARGETS)
    files = _SEEDS[seed_index]
    weights = next(data for name, data in files.items() if name != CONFIG_NAME)
    payload = files[CONFIG_NAME] if target == 1 else weights
    structured = _json_edit if target == 1 else _header_edit
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.5:
            payload = structured(rng, payload)
        else:
            payload = rng.choice(BYTE_MUTATORS)(rng, payload)
    return encode(target, seed_index, payload)


def run(seconds: float, seed: int, findings: Path) -> int:
    """Mutate seeds for ``seconds``; save failing inputs under ``findings``; return how many."""
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    runs = failures = 0
    while time.monotonic() < deadline:
        data = mutate(rng)
        runs += 1
        try:
            fuzz_once(data)
        except FuzzFinding:
            failures += 1
            findings.mkdir(parents=True, exist_ok=True)
            path = findings / f"finding-{seed}-{runs}.bin"
            path.write_bytes(data)
            print(f"{path}: {traceback.format_exc().splitlines()[-1]}", file=sys.stderr)
    print(json.dumps({"runs": runs, "findings": failures, "seconds": seconds, "seed": seed}))
    return failures


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    parser.add_argument("replay", nargs="*", type=Path, help="inputs to run once and report")
    args = parser.parse_args(argv)
    if args.replay:
        for path in args.replay:
            fuzz_once(path.read_bytes())
            print(f"{path}: ok")
        return 0
    return 1 if run(args.seconds, args.seed, args.findings) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
