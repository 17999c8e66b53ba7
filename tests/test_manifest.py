"""Canonical JSON, the manifest digest and the dict/JSON round trip."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.errors import IntegrityError
from registry.store.manifest import (
    MANIFEST_FORMAT,
    BaseModelRef,
    FileEntry,
    Lineage,
    Manifest,
    ParentRef,
    TrainingDataRef,
    canonical_json,
)

SHA_A = "a" * 64
SHA_B = "b" * 64
SHA_C = "c" * 64


def make_manifest(**changes: Any) -> Manifest:
    manifest = Manifest(
        method="lora",
        source_format="peft",
        config={"r": 8, "lora_alpha": 16, "target_modules": ["k_proj", "q_proj"]},
        files=(
            FileEntry("adapter_model.safetensors", SHA_A, 1234, "weights"),
            FileEntry("adapter_config.json", SHA_B, 321, "config"),
        ),
        base_model=BaseModelRef("tiny/llama", "main", "afp-1:" + "d" * 64),
        training_data=(TrainingDataRef(SHA_C, "directory"), TrainingDataRef(SHA_A, "file")),
        lineage=Lineage(
            operation="svd",
            parents=(
                ParentRef("p", "1", "sha256:" + SHA_A, 0.5),
                ParentRef("q", "2", "sha256:" + SHA_B),
            ),
            parameters={"rank": 4},
            tool_version="0.1.0",
        ),
    )
    return dataclasses.replace(manifest, **changes)


# -- canonical JSON ---------------------------------------------------------------


def test_canonical_json_sorts_keys_and_drops_whitespace() -> None:
    value = {"b": 1, "a": [3, 1, {"z": None, "y": True}], "c": {"é": "ü", "A": 1.5}}
    assert canonical_json(value) == (
        '{"a":[3,1,{"y":true,"z":null}],"b":1,"c":{"A":1.5,"é":"ü"}}'.encode()
    )


def test_canonical_json_is_utf8_not_ascii_escaped() -> None:
    assert canonical_json("é€😀") == '"é€😀"'.encode()
    assert canonical_json({"k": '\n"\\'}) == b'{"k":"\\n\\"\\\\"}'


def test_canonical_json_independent_of_insertion_order() -> None:
    one = {"x": 1, "y": {"b": 2, "a": 1}}
    two = {"y": {"a": 1, "b": 2}, "x": 1}
    assert canonical_json(one) == canonical_json(two)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_canonical_json_refuses_nan_and_infinity(bad: float) -> None:
    with pytest.raises(ValueError):
        canonical_json({"x": [bad]})


def test_manifest_with_nan_has_no_digest() -> None:
    manifest = make_manifest(config={"dropout": math.nan})
    with pytest.raises(ValueError):
        _ = manifest.digest
    lineage = dataclasses.replace(make_manifest().lineage, parameters={"w": math.inf})
    with pytest.raises(ValueError):
        make_manifest(lineage=lineage).canonical_bytes()


# -- to_dict and the digest -------------------------------------------------------


def test_to_dict_layout() -> None:
    assert make_manifest().to_dict() == {
        "format": MANIFEST_FORMAT,
        "method": "lora",
        "source_format": "peft",
        "config": {"r": 8, "lora_alpha": 16, "target_modules": ["k_proj", "q_proj"]},
        "files": [
            {"path": "adapter_config.json", "sha256": SHA_B, "size": 321, "role": "config"},
            {"path": "adapter_model.safetensors", "sha256": SHA_A, "size": 1234, "role": "weights"},
        ],
        "base_model": {
            "name": "tiny/llama",
            "revision": "main",
            "fingerprint": "afp-1:" + "d" * 64,
        },
        "training_data": [
            {"sha256": SHA_A, "kind": "file"},
            {"sha256": SHA_C, "kind": "directory"},
        ],
        "lineage": {
            "operation": "svd",
            "parents": [
                {"name": "p", "version": "1", "digest": "sha256:" + SHA_A, "weight": 0.5},
                {"name": "q", "version": "2", "digest": "sha256:" + SHA_B, "weight": None},
            ],
            "parameters": {"rank": 4},
            "tool_version": "0.1.0",
        },
        "requires": {},
    }


def test_digest_is_sha256_of_the_canonical_bytes() -> None:
    manifest = make_manifest()
    expected = json.dumps(
        manifest.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert manifest.canonical_bytes() == expected
    assert manifest.digest == "sha256:" + hashlib.sha256(expected).hexdigest()


def test_digest_literal_for_a_minimal_manifest() -> None:
    # Written out by hand so that any change of the canonical form shows up here.
    manifest = Manifest(
        method="ia3",
        source_format="peft",
        config={},
        files=(FileEntry("w", SHA_A, 1, "weights"),),
        base_model=BaseModelRef(None),
    )
    text = (
        '{"base_model":{"fingerprint":null,"name":null,"revision":null},"config":{},'
        f'"files":[{{"path":"w","role":"weights","sha256":"{SHA_A}","size":1}}],'
        f'"format":"{MANIFEST_FORMAT}","lineage":null,"method":"ia3",'
        '"requires":{},"source_format":"peft","training_data":[]}'
    )
    assert manifest.canonical_bytes() == text.encode()
    assert manifest.digest == "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def test_digest_stable_under_dict_ordering() -> None:
    one = make_manifest(config={"r": 8, "alpha": 16, "nested": {"x": 1, "y": [1, 2]}})
    two = make_manifest(config={"nested": {"y": [1, 2], "x": 1}, "alpha": 16, "r": 8})
    assert one.digest == two.digest


def test_digest_stable_under_file_and_training_data_order() -> None:
    base = make_manifest()
    shuffled = make_manifest(
        files=tuple(reversed(base.files)), training_data=tuple(reversed(base.training_data))
    )
    assert shuffled.digest == base.digest
    assert shuffled.canonical_bytes() == base.canonical_bytes()


def test_digest_stable_for_training_data_sharing_a_hash() -> None:
    data = (TrainingDataRef(SHA_A, "directory"), TrainingDataRef(SHA_A, "given"))
    one = make_manifest(training_data=data)
    two = make_manifest(training_data=tuple(reversed(data)))
    assert one.digest == two.digest


def _lineage(**changes: Any) -> Lineage:
    return dataclasses.replace(make_manifest().lineage, **changes)


IMMUTABLE_CHANGES: dict[str, dict[str, Any]] = {
    "method": {"method": "dora"},
    "source_format": {"source_format": "adapterhub"},
    "config-value": {"config": {"r": 16, "lora_alpha": 16, "target_modules": ["k_proj", "q_proj"]}},
    "config-type": {"config": {"r": 8.0, "lora_alpha": 16, "target_modules": ["k_proj", "q_proj"]}},
    "config-list-order": {
        "config": {"r": 8, "lora_alpha": 16, "target_modules": ["q_proj", "k_proj"]}
    },
    "config-extra-key": {
        "config": {"r": 8, "lora_alpha": 16, "target_modules": ["k_proj", "q_proj"], "x": None}
    },
    "file-path": {
        "files": (
            FileEntry("adapter_model2.safetensors", SHA_A, 1234, "weights"),
            FileEntry("adapter_config.json", SHA_B, 321, "config"),
        )
    },
    "file-sha": {
        "files": (
            FileEntry("adapter_model.safetensors", SHA_C, 1234, "weights"),
            FileEntry("adapter_config.json", SHA_B, 321, "config"),
        )
    },
    "file-size": {
        "files": (
            FileEntry("adapter_model.safetensors", SHA_A, 1235, "weights"),
            FileEntry("adapter_config.json", SHA_B, 321, "config"),
        )
    },
    "file-role": {
        "files": (
            FileEntry("adapter_model.safetensors", SHA_A, 1234, "extra"),
            FileEntry("adapter_config.json", SHA_B, 321, "config"),
        )
    },
    "file-removed": {"files": (FileEntry("adapter_config.json", SHA_B, 321, "config"),)},
    "base-name": {"base_model": BaseModelRef("tiny/gpt2", "main", "afp-1:" + "d" * 64)},
    "base-revision": {"base_model": BaseModelRef("tiny/llama", "v2", "afp-1:" + "d" * 64)},
    "base-fingerprint": {"base_model": BaseModelRef("tiny/llama", "main", None)},
    "training-sha": {
        "training_data": (TrainingDataRef(SHA_C, "directory"), TrainingDataRef(SHA_B, "file"))
    },
    "training-kind": {
        "training_data": (TrainingDataRef(SHA_C, "given"), TrainingDataRef(SHA_A, "file"))
    },
    "training-removed": {"training_data": (TrainingDataRef(SHA_C, "directory"),)},
    "lineage-none": {"lineage": None},
    "lineage-operation": {"lineage": _lineage(operation="cat")},
    "lineage-parameters": {"lineage": _lineage(parameters={"rank": 5})},
    "lineage-tool": {"lineage": _lineage(tool_version="0.2.0")},
    "lineage-parent-weight": {
        "lineage": _lineage(
            parents=(
                ParentRef("p", "1", "sha256:" + SHA_A, 0.25),
                ParentRef("q", "2", "sha256:" + SHA_B),
            )
        )
    },
    "lineage-parent-digest": {
        "lineage": _lineage(
            parents=(
                ParentRef("p", "1", "sha256:" + SHA_C, 0.5),
                ParentRef("q", "2", "sha256:" + SHA_B),
            )
        )
    },
    "lineage-parent-version": {
        "lineage": _lineage(
            parents=(
                ParentRef("p", "3", "sha256:" + SHA_A, 0.5),
                ParentRef("q", "2", "sha256:" + SHA_B),
            )
        )
    },
    "lineage-parent-removed": {
        "lineage": _lineage(parents=(ParentRef("p", "1", "sha256:" + SHA_A, 0.5),))
    },
}


@pytest.mark.parametrize("field", sorted(IMMUTABLE_CHANGES))
def test_digest_changes_with_every_immutable_field(field: str) -> None:
    base = make_manifest()
    changed = make_manifest(**IMMUTABLE_CHANGES[field])
    assert changed.digest != base.digest
    assert changed.digest.startswith("sha256:")
    assert len(changed.digest) == len("sha256:") + 64


def test_all_changed_digests_are_distinct() -> None:
    digests = {make_manifest(**change).digest for change in IMMUTABLE_CHANGES.values()}
    digests.add(make_manifest().digest)
    assert len(digests) == len(IMMUTABLE_CHANGES) + 1


# -- from_dict --------------------------------------------------------------------


def test_round_trip_through_dict_and_json() -> None:
    manifest = make_manifest()
    sorted_manifest = make_manifest(
        files=tuple(sorted(manifest.files, key=lambda f: f.path)),
        training_data=tuple(sorted(manifest.training_data, key=lambda t: t.sha256)),
    )
    assert Manifest.from_dict(manifest.to_dict()) == sorted_manifest
    assert Manifest.from_json(manifest.canonical_bytes()) == sorted_manifest
    assert Manifest.from_json(manifest.canonical_bytes().decode()) == sorted_manifest
    assert Manifest.from_dict(manifest.to_dict()).digest == manifest.digest


def test_round_trip_without_lineage_and_training_data() -> None:
    manifest = make_manifest(lineage=None, training_data=(), files=())
    assert Manifest.from_dict(manifest.to_dict()) == manifest


@pytest.mark.parametrize("fmt", ["adapter-registry/manifest-2", "", None, "manifest-1"])
def test_unknown_format_refused(fmt: str | None) -> None:
    data = make_manifest().to_dict()
    data["format"] = fmt
    with pytest.raises(IntegrityError, match=f"unknown manifest format {fmt!r}"):
        Manifest.from_dict(data)


def test_missing_format_refused() -> None:
    data = make_manifest().to_dict()
    del data["format"]
    with pytest.raises(IntegrityError, match="unknown manifest format None"):
        Manifest.from_dict(data)


def test_from_dict_fills_lineage_defaults() -> None:
    data = make_manifest().to_dict()
    data["lineage"] = {"operation": "cat", "parents": []}
    lineage = Manifest.from_dict(data).lineage
    assert lineage == Lineage(operation="cat", parents=(), parameters={}, tool_version="")


def test_file_lookup() -> None:
    manifest = make_manifest()
    assert manifest.file("adapter_config.json") == FileEntry(
        "adapter_config.json", SHA_B, 321, "config"
    )
    with pytest.raises(KeyError):
        manifest.file("missing.bin")


# -- generated manifests ----------------------------------------------------------

_keys = st.text(min_size=1, max_size=8)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4),
    max_leaves=12,
)
_hex = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
_files = st.lists(
    st.builds(
        FileEntry,
        path=st.text(min_size=1, max_size=20),
        sha256=_hex,
        size=st.integers(0, 2**40),
        role=st.sampled_from(["config", "weights", "card", "extra"]),
    ),
    max_size=5,
    unique_by=lambda f: f.path,
).map(tuple)
_training = st.lists(
    st.builds(TrainingDataRef, sha256=_hex, kind=st.sampled_from(["file", "directory", "given"])),
    max_size=3,
    unique_by=lambda t: t.sha256,
).map(tuple)
_parents = st.lists(
    st.builds(
        ParentRef,
        name=st.text(max_size=10),
        version=st.text(max_size=5),
        digest=_hex.map(lambda h: "sha256:" + h),
        weight=st.none() | st.floats(allow_nan=False, allow_infinity=False),
    ),
    max_size=3,
).map(tuple)
_lineages = st.none() | st.builds(
    Lineage,
    operation=st.sampled_from(["cat", "svd", "ties", "merge"]),
    parents=_parents,
    parameters=st.dictionaries(_keys, _json, max_size=3),
    tool_version=st.text(max_size=6),
)
manifests = st.builds(
    Manifest,
    method=st.sampled_from(["lora", "ia3", "prefix_tuning", "loha"]),
    source_format=st.sampled_from(["peft", "adapterhub"]),
    config=st.dictionaries(_keys, _json, max_size=5),
    files=_files,
    base_model=st.builds(
        BaseModelRef,
        name=st.none() | st.text(max_size=12),
        revision=st.none() | st.text(max_size=8),
        fingerprint=st.none() | _hex,
    ),
    training_data=_training,
    lineage=_lineages,
)


def _sorted(manifest: Manifest) -> Manifest:
    return dataclasses.replace(
        manifest,
        files=tuple(sorted(manifest.files, key=lambda f: f.path)),
        training_data=tuple(sorted(manifest.training_data, key=lambda t: t.sha256)),
    )


@given(manifests)
@settings(max_examples=60)
def test_generated_manifests_round_trip(manifest: Manifest) -> None:
    expected = _sorted(manifest)
    from_dict = Manifest.from_dict(manifest.to_dict())
    assert from_dict == expected
    assert from_dict.digest == manifest.digest
    from_json = Manifest.from_json(manifest.canonical_bytes())
    assert from_json.to_dict() == manifest.to_dict()
    assert from_json.canonical_bytes() == manifest.canonical_bytes()
    assert from_json.digest == manifest.digest


@given(manifests, st.randoms(use_true_random=False))
@settings(max_examples=60)
def test_generated_digest_independent_of_orders(manifest: Manifest, rnd: Any) -> None:
    files = list(manifest.files)
    data = list(manifest.training_data)
    rnd.shuffle(files)
    rnd.shuffle(data)
    config_items = list(manifest.config.items())
    rnd.shuffle(config_items)
    shuffled = dataclasses.replace(
        manifest, files=tuple(files), training_data=tuple(data), config=dict(config_items)
    )
    assert shuffled.digest == manifest.digest


@given(manifests)
@settings(max_examples=60)
def test_canonical_bytes_are_canonical(manifest: Manifest) -> None:
    raw = manifest.canonical_bytes()
    reparsed = json.loads(raw)
    assert canonical_json(reparsed) == raw
    assert (
        json.dumps(reparsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        == raw
    )
