"""Corruption of stored data: found by verify, refused by load and export, the file named.

One byte flipped in each stored file (config, weights, card), the weights blob truncated or
deleted, and the manifest edited in the catalog. Each time ``verify`` fails naming the file,
``export`` refuses naming it and leaves the target untouched, and ``load`` refuses before the
model is touched.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from sqlalchemy import text
from support.handmade import tiny_model, write_adapter

from registry import Registry
from registry.cli import main
from registry.errors import BaseModelMismatchError, IntegrityError
from registry.store.results import AdapterVersion

FILES = ["README.md", "adapter_config.json", "adapter_model.safetensors"]


def _blob(registry: Registry, version: AdapterVersion, path: str) -> Path:
    entry = next(f for f in version.files if f.path == path)
    blob = registry.blobs.path(entry.sha256)
    os.chmod(blob, 0o644)  # blobs are read-only; an attacker or a bad disk does not care
    return blob


def flip_byte(blob: Path) -> None:
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))


def truncate(blob: Path) -> None:
    data = blob.read_bytes()
    blob.write_bytes(data[: len(data) - 100])


def delete(blob: Path) -> None:
    blob.unlink()


DAMAGE: dict[str, tuple[str, Callable[[Path], None]]] = {
    **{f"flip-{name}": (name, flip_byte) for name in FILES},
    "truncate-adapter_model.safetensors": ("adapter_model.safetensors", truncate),
    "delete-adapter_model.safetensors": ("adapter_model.safetensors", delete),
}


@pytest.fixture
def registry(sqlite_registry: Registry) -> Registry:
    # Blobs are files whatever the catalog backend; the manifest edit runs on every backend.
    return sqlite_registry


@pytest.fixture
def any_backend(
    database_url: str, hermetic_env: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Registry]:
    monkeypatch.setenv("ADAPTERS_DATABASE_URL", database_url)
    reg = Registry.open(hermetic_env, create=True)
    try:
        yield reg
    finally:
        reg.close()


@pytest.fixture
def stored(registry: Registry, tmp_path: Path) -> AdapterVersion:
    directory = write_adapter(tmp_path / "adapter", "lora", card=True)
    version = registry.push(directory, name="victim").version
    assert registry.verify(version.ref).ok
    return version


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def assert_refused_everywhere(
    registry: Registry, version: AdapterVersion, path: str, tmp_path: Path
) -> None:
    report = registry.verify(version.ref)
    assert not report.ok
    failed = {c.name: c.detail for c in report.failures}
    assert f"file {path}" in failed and path in failed[f"file {path}"]

    cli = CliRunner().invoke(main, ["verify", version.ref])
    assert cli.exit_code == 1 and f"file {path}" in cli.stdout and "FAIL" in cli.stdout

    target = tmp_path / "exported"
    with pytest.raises(IntegrityError, match=path):
        registry.export(version.ref, target)
    assert not target.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".exported.export-")]
    cli = CliRunner().invoke(main, ["export", version.ref, str(target)])
    assert cli.exit_code == 1 and cli.stderr.startswith("error: ") and path in cli.stderr

    model = tiny_model()
    before = _params(model)
    with pytest.raises(IntegrityError, match=path):
        registry.load(version.ref, model)
    after = _params(model)
    assert all(torch.equal(before[name], after[name]) for name in before)


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_blob_is_found_and_refused(
    case: str, registry: Registry, stored: AdapterVersion, tmp_path: Path
) -> None:
    path, damage = DAMAGE[case]
    damage(_blob(registry, stored, path))
    assert_refused_everywhere(registry, stored, path, tmp_path)


def test_intact_version_loads_and_exports(
    registry: Registry, stored: AdapterVersion, tmp_path: Path
) -> None:
    # The control: everything refused above works on the undamaged version.
    exported = registry.export(stored.ref, tmp_path / "out")
    assert sorted(p.name for p in exported.directory.iterdir()) == FILES
    model = tiny_model()
    before = _params(model)
    with pytest.raises(BaseModelMismatchError, match="never fingerprinted"):
        registry.load(stored.ref, model)  # unverified base: refused unless accepted
    with pytest.warns(UserWarning, match="never fingerprinted"):
        handle = registry.load(stored.ref, model, allow_unverified_base=True)
    with handle:
        assert not torch.equal(
            _params(model)["model.layers.0.self_attn.q_proj.weight"],
            before["model.layers.0.self_attn.q_proj.weight"],
        )
    assert all(torch.equal(before[n], p) for n, p in _params(model).items())


def _edit_manifest(registry: Registry, version: AdapterVersion, old: str, new: str) -> None:
    with registry.catalog.engine.begin() as connection:
        manifest = connection.execute(
            text("SELECT manifest FROM adapter_versions WHERE name = :n AND digest = :d"),
            {"n": version.name, "d": version.digest},
        ).scalar_one()
        assert old in manifest
        connection.execute(
            text("UPDATE adapter_versions SET manifest = :m WHERE name = :n AND digest = :d"),
            {"m": manifest.replace(old, new), "n": version.name, "d": version.digest},
        )


def test_edited_manifest_is_found_and_refused(any_backend: Registry, tmp_path: Path) -> None:
    registry = any_backend
    directory = write_adapter(tmp_path / "adapter", "lora", card=True)
    stored = registry.push(directory, name="victim").version
    # Point the card entry at the config's blob: every blob is intact, only the manifest lies.
    card = next(f for f in stored.files if f.path == "README.md")
    config = next(f for f in stored.files if f.path == "adapter_config.json")
    _edit_manifest(registry, stored, card.sha256, config.sha256)
    report = registry.verify(stored.ref)
    assert {c.name for c in report.failures} >= {"digest"}
    with pytest.raises(IntegrityError, match="recorded manifest hashes to"):
        registry.export(stored.ref, tmp_path / "out")
    with pytest.raises(IntegrityError, match="recorded manifest hashes to"):
        registry.load(stored.ref, tiny_model())


def test_manifest_paths_cannot_leave_the_export_directory(
    registry: Registry, stored: AdapterVersion, tmp_path: Path
) -> None:
    # Even with the digest recomputed to match (a catalog rewritten by hand), an export
    # never writes outside its target.
    from dataclasses import replace

    from registry.store.export import export_version
    from registry.store.manifest import FileEntry

    evil = tuple(
        FileEntry("../escaped.md", f.sha256, f.size, f.role) if f.path == "README.md" else f
        for f in stored.files
    )
    manifest = replace(stored.manifest, files=evil)
    forged = replace(stored, manifest=manifest, digest=manifest.digest)
    with pytest.raises(IntegrityError, match="would leave the export directory"):
        export_version(forged, registry.blobs, tmp_path / "out")
    assert not (tmp_path / "escaped.md").exists()
