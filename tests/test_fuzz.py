"""The format readers under fuzzing, for a bounded time (see tests/support/fuzz.py).

Four generators feed ``fuzz_once``: raw bytes, safetensors headers built from hostile
declarations, configs with hostile values in known and unknown keys, and mutations of valid
adapters. Each test stops after ``ADAPTERS_FUZZ_SECONDS`` (default 4) or
``ADAPTERS_FUZZ_EXAMPLES`` inputs (default 5000), whichever comes first, so CI spends about
sixteen seconds here; raise both for a longer run. Inputs that once escaped a reader are kept
below as regression cases.
"""

from __future__ import annotations

import json
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.fuzz import SEED_KINDS, TARGETS, FuzzFinding, encode, fuzz_once, mutate
from support.handmade import adapter_files

from registry.errors import ValidationError
from registry.formats import read_adapter_files, read_safetensors_header

SECONDS = float(os.environ.get("ADAPTERS_FUZZ_SECONDS", "4"))
EXAMPLES = int(os.environ.get("ADAPTERS_FUZZ_EXAMPLES", "5000"))
# Hypothesis has no time budget of its own: it runs in small batches until this one is spent.
BATCH = settings(
    max_examples=50,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

T = TypeVar("T")


def fuzz_for_a_while(strategy: st.SearchStrategy[T], to_input: Callable[[T], bytes]) -> int:
    """Run ``fuzz_once`` on generated inputs for ``SECONDS``; return how many ran."""
    ran = 0

    @BATCH
    @given(strategy)
    def batch(value: T) -> None:
        nonlocal ran
        ran += 1
        fuzz_once(to_input(value))

    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline and ran < EXAMPLES:
        batch()
    return ran


_selectors = st.integers(0, len(SEED_KINDS) * TARGETS - 1)

# -- generators -------------------------------------------------------------------------------

_ints = st.one_of(
    st.integers(-3, 70),
    st.sampled_from([2**31, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 2**64, -(2**63), 10**19]),
)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    _ints,
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)
_dtypes = st.one_of(
    st.sampled_from(["F32", "F16", "BF16", "F64", "I8", "BOOL", "F4", "F6_E2M3"]), _scalars
)
_shapes = st.one_of(st.lists(_ints, max_size=4), st.lists(_scalars, max_size=3), _scalars)


@st.composite
def _declaration(draw: st.DrawFn, data_size: int) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(_values)
    entry: dict[str, Any] = {}
    for key, strategy in (
        ("dtype", _dtypes),
        ("shape", _shapes),
        ("data_offsets", st.lists(st.one_of(st.integers(0, data_size + 2), _ints), max_size=3)),
    ):
        if draw(st.integers(0, 7)):
            entry[key] = draw(strategy)
    return entry


@st.composite
def safetensors_files(draw: st.DrawFn) -> bytes:
    """A header of hostile declarations, an honest or lying length, and a data section."""
    data = draw(st.binary(max_size=96))
    names = st.text(max_size=8) | st.sampled_from(["__metadata__", "prompt_embeddings"])
    header = draw(st.dictionaries(names, _declaration(len(data)), max_size=5))
    text = json.dumps(header, allow_nan=False).encode()
    length = len(text) + draw(st.sampled_from([0, 0, 0, -1, 1, 7, 2**40]))
    return struct.pack("<Q", max(0, length)) + text + data


_KNOWN_KEYS = [
    "peft_type",
    "r",
    "lora_alpha",
    "target_modules",
    "exclude_modules",
    "rank_pattern",
    "alpha_pattern",
    "layers_to_transform",
    "layers_pattern",
    "use_dora",
    "use_rslora",
    "fan_in_fan_out",
    "modules_to_save",
    "feedforward_modules",
    "num_virtual_tokens",
    "token_dim",
    "num_transformer_submodules",
    "num_layers",
    "base_model_name_or_path",
    "revision",
    "config",
    "hidden_size",
    "model_name",
]


@st.composite
def configs(draw: st.DrawFn) -> bytes:
    """A seed's valid config with hostile values in known (and unknown) keys."""
    seed = json.loads(adapter_files(draw(st.sampled_from(SEED_KINDS)))["adapter_config.json"])
    for _ in range(draw(st.integers(1, 4))):
        key = draw(st.sampled_from(_KNOWN_KEYS) | st.text(max_size=8))
        if draw(st.booleans()) or key not in seed:
            seed[key] = draw(_values)
        else:
            del seed[key]
    if isinstance(seed.get("config"), dict) and draw(st.booleans()):
        seed["config"][draw(st.text(max_size=8))] = draw(_values)
    return json.dumps(seed, allow_nan=False).encode()


# -- the fuzz tests ---------------------------------------------------------------------------


def test_raw_bytes() -> None:
    assert fuzz_for_a_while(st.binary(max_size=2048), bytes) > 0


def test_hostile_headers() -> None:
    def as_input(drawn: tuple[int, bytes]) -> bytes:
        selector, payload = drawn
        return encode(0 if selector % 2 else 2, selector // TARGETS, payload)

    assert fuzz_for_a_while(st.tuples(_selectors, safetensors_files()), as_input) > 0


def test_hostile_configs() -> None:
    def as_input(payload: bytes) -> bytes:
        # Weights that match the config's method: the config is the only thing under test.
        kind = str(json.loads(payload).get("peft_type", "")).lower()
        return encode(1, SEED_KINDS.index(kind) if kind in SEED_KINDS else 0, payload)

    assert fuzz_for_a_while(configs(), as_input) > 0


def test_mutated_adapters() -> None:
    assert fuzz_for_a_while(st.randoms(use_true_random=False), mutate) > 0


# -- regressions: inputs that once escaped a reader -------------------------------------------


def _lora(**changes: Any) -> dict[str, bytes]:
    files = adapter_files("lora")
    config = json.loads(files["adapter_config.json"])
    config.update(changes)
    files["adapter_config.json"] = json.dumps(config).encode()
    return files


def _raw_config(tail: bytes) -> dict[str, bytes]:
    files = adapter_files("lora")
    files["adapter_config.json"] = files["adapter_config.json"].rstrip()[:-1] + b"," + tail + b"}"
    return files


def _header(declarations: dict[str, Any], data: bytes = b"\0" * 4) -> dict[str, bytes]:
    files = adapter_files("lora")
    text = json.dumps(declarations).encode()
    files["adapter_model.safetensors"] = struct.pack("<Q", len(text)) + text + data
    return files


def _trailing_bytes() -> dict[str, bytes]:
    files = adapter_files("lora")
    files["adapter_model.safetensors"] += b"\0" * 16
    return files


REGRESSIONS: dict[str, tuple[Callable[[], dict[str, bytes]], str]] = {
    # json.loads turns 1e999 into infinity, which the canonical config bytes cannot hold.
    "float-overflow-to-inf": (lambda: _raw_config(b'"x": 1e999'), "out of range for a float"),
    # Parses, then overflows the stack in copy.deepcopy.
    "config-nested-800-deep": (
        lambda: _raw_config(b'"x": ' + b"[" * 800 + b"]" * 800),
        "nested more than 64 levels",
    ),
    # Read fine, then the manifest digest could not encode it as UTF-8.
    "lone-surrogate-in-config": (lambda: _raw_config(b'"x": "\\ud800"'), "unpaired surrogate"),
    # PostgreSQL cannot store NUL in a text column: the push crashed after writing blobs.
    "nul-in-base-model-name": (
        lambda: _lora(base_model_name_or_path="tiny\u0000llama"),
        "control characters",
    ),
    # Python refuses to print an integer of more than 4300 digits: the message crashed.
    "huge-integer": (lambda: _raw_config(b'"r2": ' + b"9" * 5000), "5000 digits"),
    "shape-product-too-large": (
        lambda: _header({"a": {"dtype": "F32", "shape": [2**63] * 300, "data_offsets": [0, 4]}}),
        "more than 2**64 bytes",
    ),
    "header-nested-900-deep": (
        lambda: _header({"a": {"dtype": json.loads("[" * 900 + "]" * 900)}}),
        "nested more than 64 levels",
    ),
    # Accepted, stored, and then refused by the safetensors library at load time.
    "bytes-after-the-last-tensor": (_trailing_bytes, "belong to no tensor"),
}


@pytest.mark.parametrize("case", sorted(REGRESSIONS))
def test_regressions(case: str, tmp_path: Path) -> None:
    build, expected = REGRESSIONS[case]
    paths = {}
    for name, data in build().items():
        (tmp_path / name).write_bytes(data)
        paths[name] = tmp_path / name
    with pytest.raises(ValidationError) as caught:
        read_adapter_files(paths, label="case")
    assert expected in str(caught.value)
    assert len(str(caught.value)) < 1000
    weights = next(n for n in paths if n != "adapter_config.json")
    for target, payload in ((1, paths["adapter_config.json"]), (2, paths[weights])):
        fuzz_once(encode(target, SEED_KINDS.index("lora"), payload.read_bytes()))


def test_header_messages_stay_short(tmp_path: Path) -> None:
    # A 10**5-dimensional shape must not turn into a 600 KB error line.
    path = tmp_path / "w.safetensors"
    text = json.dumps({"a": {"dtype": "F32", "shape": list(range(10**5)), "data_offsets": [0, 4]}})
    path.write_bytes(struct.pack("<Q", len(text)) + text.encode() + b"\0" * 4)
    with pytest.raises(ValidationError) as caught:
        read_safetensors_header(path)
    assert "100000 dimensions" in str(caught.value)
    assert len(str(caught.value)) < 400


def test_fuzz_once_reports_escapes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The harness itself can fail: a reader raising something else is a finding.
    from support import fuzz

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("boom")

    monkeypatch.setattr(fuzz, "read_adapter_files", broken)
    with pytest.raises(FuzzFinding, match="KeyError"):
        fuzz_once(encode(1, 0, b"{}"))
