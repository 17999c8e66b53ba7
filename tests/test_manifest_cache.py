"""Manifests read from catalog rows are parsed once per distinct text, and every reader
gets its own copy of the mutable parts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from support.handmade import write_adapter

from registry import Registry
from registry.store.catalog import manifest_cache
from registry.store.catalog.manifest_cache import parsed_manifest
from registry.store.manifest import BaseModelRef, FileEntry, Lineage, Manifest, ParentRef


def _manifest() -> Manifest:
    return Manifest(
        method="lora",
        source_format="peft",
        config={"peft_type": "LORA", "r": 8, "target_modules": ["q_proj", "v_proj"],
                "nested": {"a": [1, {"b": 2}]}},
        files=(FileEntry("adapter_model.safetensors", "a" * 64, 10, "weights"),),
        base_model=BaseModelRef("tiny", "main", None),
        lineage=Lineage("combine", (ParentRef("x", "1", "sha256:" + "b" * 64),),
                        {"weights": [0.5, 0.5], "method": {"name": "svd"}}, "1.0"),
        requires={"peft": ">=0.14"},
        analysis="structural",
    )  # fmt: skip


def test_a_cached_manifest_equals_a_fresh_parse_field_by_field() -> None:
    text = _manifest().canonical_bytes().decode()
    first, second = parsed_manifest(text), parsed_manifest(text)
    fresh = Manifest.from_json(text)
    for got in (first, second):
        assert got == fresh and got.digest == fresh.digest
        assert got.requires_key == fresh.requires_key and got.analysis == "structural"
    # The copy names every field: a new one must be added to manifest_cache._copy too.
    assert [f.name for f in dataclasses.fields(Manifest)] == [
        "method", "source_format", "config", "files", "base_model", "training_data",
        "lineage", "requires", "requires_key", "analysis",
    ]  # fmt: skip


def test_editing_what_was_read_does_not_change_the_next_read() -> None:
    text = _manifest().canonical_bytes().decode()
    first = parsed_manifest(text)
    first.config["r"] = 64
    first.config["target_modules"].append("o_proj")
    first.config["nested"]["a"][1]["b"] = 3
    first.requires["torch"] = ">=2"
    assert first.lineage is not None
    first.lineage.parameters["method"]["name"] = "cat"
    again = parsed_manifest(text)
    assert again == Manifest.from_json(text)
    assert again.config["r"] == 8 and again.config["target_modules"] == ["q_proj", "v_proj"]
    assert again.lineage is not None and again.lineage.parameters["method"]["name"] == "svd"


def test_listing_reads_kept_manifests_and_an_edited_row_afresh(tmp_path: Path) -> None:
    with Registry.open(tmp_path / "home", create=True) as registry:
        registry.push(write_adapter(tmp_path / "kept-lora", seed=3))
        manifest_cache._kept.clear()
        listed = registry.list()
        assert [v.manifest for v in listed] == [registry.get("kept-lora").manifest]
        text = listed[0].manifest.canonical_bytes().decode()
        assert text in manifest_cache._kept  # parsed once, kept by its exact text
        # A row whose text is not the kept one is parsed from its own text.
        edited = text.replace('"source_format":"peft"', '"source_format":"other"')
        assert parsed_manifest(edited).source_format == "other"
        assert parsed_manifest(text).source_format == "peft"


def test_the_texts_kept_are_bounded_in_bytes_not_only_in_count() -> None:
    # A config may be up to 16 MiB: 8192 of them kept would be gigabytes.
    def text(n: int, size: int) -> str:
        big = dataclasses.replace(
            _manifest(), config={"peft_type": "LORA", "pad": "x" * size, "n": n}
        )
        return big.canonical_bytes().decode()

    huge = text(0, 2 * 1024 * 1024)
    assert parsed_manifest(huge) == Manifest.from_json(huge)
    assert huge not in manifest_cache._kept  # larger than any real manifest: parsed, not kept
    for n in range(1, 100):
        parsed_manifest(text(n, 900 * 1024))
    assert sum(len(kept) for kept in manifest_cache._kept) <= 64 * 1024 * 1024
