"""A push refused by the server reads as the same push refused locally: the directory as
the client named it, never the server's staging path (none of the client's business)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.handmade import write_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.errors import FormatError, RegistryError, ValidationError
from registry.remote import upload as remote_upload


def _refusal(registry: Registry, directory: Path) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        registry.push(directory, name="refused")
    return caught.value


@pytest.mark.parametrize("bundled", [True, False], ids=["bundle", "uploads"])
def test_an_invalid_adapter_is_named_as_the_client_gave_it(
    served: ServedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundled: bool
) -> None:
    if not bundled:  # files by PUT, then POST /push
        monkeypatch.setattr(remote_upload, "BUNDLE_BYTES", 0)
    directory = write_adapter(tmp_path / "bad", seed=71)
    (directory / "adapter_config.json").write_text('{"peft_type": "LORA", "r": "eight"}')
    (directory / "adapter_model.safetensors").write_bytes(b"garbage")
    with Registry.open(tmp_path / "local", create=True) as local:
        expected = _refusal(local, directory)
    with Registry.open(served.url, token=served.tokens["writer"]) as remote:
        refused = _refusal(remote, directory)
    assert isinstance(refused, ValidationError) and isinstance(expected, ValidationError)
    assert refused.subject == str(directory) and refused.problems == expected.problems
    assert str(refused) == str(expected)
    assert str(served.home) not in str(refused)


def test_a_directory_that_is_not_an_adapter_is_refused_as_locally(
    served: ServedRegistry, tmp_path: Path
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    linked = write_adapter(tmp_path / "linked", seed=72)
    os.symlink("/etc/hostname", linked / "notes.txt")
    cases = [empty, tmp_path / "missing", linked / "adapter_config.json", linked]
    with (
        Registry.open(tmp_path / "local", create=True) as local,
        Registry.open(served.url, token=served.tokens["writer"]) as remote,
    ):
        for directory in cases:
            expected, refused = _refusal(local, directory), _refusal(remote, directory)
            assert isinstance(refused, FormatError), directory
            assert str(refused) == str(expected), directory
