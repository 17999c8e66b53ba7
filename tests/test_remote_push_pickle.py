"""``push --convert-pickle`` through a server: the pickle weights are converted on the client
by the code and checks a local push uses, and the version stored is the one a local push
stores (same digest, same manifest, same notes)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file
from support.handmade import write_lora
from support.server import ROOT, ServedRegistry

from registry import Registry
from registry.errors import UnsafeFormatError
from registry.remote import upload as remote_upload


def _pickled(directory: Path, seed: int) -> Path:
    """A LoRA whose weights are only ``adapter_model.bin``, beside training state."""
    write_lora(directory, seed)
    weights = directory / "adapter_model.safetensors"
    torch.save(load_file(str(weights)), directory / "adapter_model.bin")
    weights.unlink()
    torch.save({"step": torch.tensor(3)}, directory / "optimizer.pt")
    (directory / "README.md").write_text("# pickled\n")
    return directory


def _client(served: ServedRegistry) -> Registry:
    return Registry.open(served.url, token=served.tokens["writer"])


def _name() -> str:
    return f"pk{os.urandom(4).hex()}"


@pytest.mark.parametrize("bundled", [True, False], ids=["one-request", "file-by-file"])
def test_a_remote_push_converts_pickle_weights_as_a_local_push_does(
    served: ServedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bundled: bool
) -> None:
    if not bundled:
        monkeypatch.setattr(remote_upload, "BUNDLE_BYTES", 0)
    directory = _pickled(tmp_path / "adapter", seed=7)
    name = _name()
    with Registry.open(tmp_path / "local-home", create=True) as local:
        expected = local.push(directory, name=name, convert_pickle=True)
    with _client(served) as remote:
        with pytest.raises(UnsafeFormatError, match="--convert-pickle"):
            remote.push(directory, name=name)
        pushed = remote.push(directory, name=name, convert_pickle=True)
        assert pushed.created
        assert pushed.version.digest == expected.version.digest
        assert pushed.version.manifest == expected.version.manifest
        assert pushed.skipped == expected.skipped
        assert any("converted to adapter_model.safetensors" in s for s in pushed.skipped)
        assert {f.path for f in pushed.version.files} == {
            "README.md", "adapter_config.json", "adapter_model.safetensors",
        }  # fmt: skip
        assert remote.verify(pushed.version.ref).ok
    assert sorted(p.name for p in directory.iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.bin", "optimizer.pt",
    ]  # fmt: skip  (the source directory is left as it was)


def test_a_remote_push_of_safetensors_weights_is_unchanged_by_the_flag(
    served: ServedRegistry, tmp_path: Path
) -> None:
    directory = write_lora(tmp_path / "safe", 8)
    (directory / "adapter_model.bin").write_bytes(b"never read")
    name = _name()
    with Registry.open(tmp_path / "local-home", create=True) as local:
        expected = local.push(directory, name=name, convert_pickle=True)
    with _client(served) as remote:
        pushed = remote.push(directory, name=name, convert_pickle=True)
    assert pushed.version.digest == expected.version.digest
    assert pushed.skipped == expected.skipped


class _Payload:
    """Unpickling this runs ``exec`` of code that writes the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('executed')",))


@pytest.mark.parametrize("how", ["pickle", "torch.save"])
def test_code_in_the_pickle_is_refused_on_the_client_and_nothing_is_sent(
    served: ServedRegistry, tmp_path: Path, how: str
) -> None:
    directory = _pickled(tmp_path / "evil", seed=9)
    marker = tmp_path / "marker"
    if how == "pickle":
        data = pickle.dumps({"weight": _Payload(marker)}, protocol=2)
        (directory / "adapter_model.bin").write_bytes(data)
    else:
        torch.save({"weight": _Payload(marker)}, directory / "adapter_model.bin")
    name = _name()
    before = served.server.access_log().count("\n")
    with _client(served) as remote:
        with pytest.raises(UnsafeFormatError, match=r"weights_only=True"):
            remote.push(directory, name=name, convert_pickle=True)
        assert remote.list(name=name) == []
    assert not marker.exists()
    sent = served.server.access_log().splitlines()[before:]
    assert not [line for line in sent if '"PUT"' in line or "/push" in line]


def test_the_cli_converts_pickle_weights_for_a_remote_push(
    served: ServedRegistry, tmp_path: Path
) -> None:
    directory = _pickled(tmp_path / "cli-adapter", seed=10)
    name = _name()
    with Registry.open(tmp_path / "local-home", create=True) as local:
        expected = local.push(directory, name=name, convert_pickle=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ADAPTERS_TOKEN": served.tokens["writer"]}
    done = subprocess.run(
        [sys.executable, "-m", "registry.cli", "--registry", served.url, "push", str(directory),
         "--name", name, "--convert-pickle", "--json"],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["version"]["digest"] == expected.version.digest
