"""Blobs a remote client downloads: a file in its local cache that was damaged or swapped
after it was kept is found, dropped and downloaded again, never used; a file missing from
the server's blob store is a one-line refusal that says what to run, not a server error."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from support.handmade import tiny_model, write_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.errors import IntegrityError


def _cached(cache: Path, sha256: str) -> Path:
    return cache / "objects" / "sha256" / sha256[:2] / sha256[2:]


def _damage(path: Path, data: bytes) -> None:
    path.chmod(0o644)
    path.write_bytes(data)


@pytest.mark.parametrize("damage", ["flipped", "swapped", "truncated"])
def test_a_damaged_cached_blob_is_downloaded_again(
    served: ServedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    cache = tmp_path / "cache"
    monkeypatch.setenv("ADAPTERS_CACHE_DIR", str(cache))
    name = f"c{uuid.uuid4().hex[:10]}"
    directory = write_adapter(tmp_path / "a", seed=11)
    other = write_adapter(tmp_path / "b", seed=12)
    reg = Registry.open(served.url, token=served.tokens["writer"])
    try:
        version = reg.push(directory, name=name).version
        reg.export(name, tmp_path / "first")
        weights = next(f for f in version.files if f.path.endswith(".safetensors"))
        blob = _cached(cache, weights.sha256)
        good = blob.read_bytes()
        if damage == "flipped":
            _damage(blob, good[:-5] + bytes([good[-5] ^ 0xFF]) + good[-4:])
        elif damage == "swapped":
            _damage(blob, (other / weights.path).read_bytes())
        else:
            _damage(blob, good[:100])

        result = reg.export(name, tmp_path / "again")
        assert (tmp_path / "again" / weights.path).read_bytes() == good
        assert sorted(result.files) == sorted(p.name for p in directory.iterdir())
        assert blob.read_bytes() == good

        _damage(blob, good[:-5] + bytes([good[-5] ^ 0xFF]) + good[-4:])
        model = tiny_model()
        expected = tiny_model()
        expected.load_state_dict(model.state_dict())
        with Registry.open(tmp_path / "local", create=True) as local:
            local.push(directory, name=name)
            with (
                local.load(name, expected, mode="native", allow_unverified_base=True),
                reg.load(name, model, mode="native", allow_unverified_base=True),
            ):
                for key, value in model.state_dict().items():
                    assert value.equal(expected.state_dict()[key])
    finally:
        reg.close()


def test_a_blob_missing_on_the_server_is_an_integrity_error_saying_what_to_run(
    served: ServedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if served.blob_url is not None:
        pytest.skip("the server's blobs are in object storage")
    monkeypatch.setenv("ADAPTERS_CACHE_DIR", str(tmp_path / "cache"))
    name = f"m{uuid.uuid4().hex[:10]}"
    with Registry.open(served.url, token=served.tokens["writer"]) as reg:
        version = reg.push(write_adapter(tmp_path / "a", seed=13), name=name).version
        weights = next(f for f in version.files if f.path.endswith(".safetensors"))
        blob = served.home / "objects" / "sha256" / weights.sha256[:2] / weights.sha256[2:]
        saved = tmp_path / "saved"
        blob.rename(saved)
        try:
            with pytest.raises(IntegrityError, match=f"adapters verify {version.ref}") as caught:
                reg.export(name, tmp_path / "out")
        finally:
            saved.rename(blob)
        assert "\n" not in str(caught.value) and str(served.home) not in str(caught.value)
        assert not (tmp_path / "out").exists()
        reg.export(name, tmp_path / "out")  # restored: the same call completes
