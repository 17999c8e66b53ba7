"""``push(exhaustive_base=True)`` without ``base_path`` through a server: the base the
adapter names is found on the client where a local push looks for it, hashed in full there,
and recorded as a local push records it; a base not found there is refused with the fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from support.models import base_model, save_base
from support.ops_adapters import save_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.errors import ArgumentError


def _name() -> str:
    return f"ex{os.urandom(4).hex()}"


def test_a_base_named_by_the_adapter_is_hashed_in_full_on_the_client(
    served: ServedRegistry, tmp_path: Path
) -> None:
    base_dir = save_base(base_model(), tmp_path / "base")
    adapter = save_adapter("lora", tmp_path / "a", 1)
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(base_dir)  # found by name: a directory
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    name = _name()
    with Registry.open(tmp_path / "local-home", create=True) as local:
        expected = local.push(adapter, name=name, exhaustive_base=True)
        (local_base,) = local.bases()
    with Registry.open(served.url, token=served.tokens["writer"]) as remote:
        pushed = remote.push(adapter, name=name, exhaustive_base=True)
        recorded = [b for b in remote.bases() if b.name == str(base_dir)]
    assert pushed.base_unverified is None and expected.base_unverified is None
    assert pushed.version.digest == expected.version.digest
    assert pushed.version.manifest == expected.version.manifest
    (remote_base,) = recorded
    assert remote_base.fingerprint == local_base.fingerprint
    assert remote_base.fingerprint is not None and remote_base.fingerprint.digests


def test_a_base_not_on_the_client_is_refused_with_the_fix(
    served: ServedRegistry, tmp_path: Path
) -> None:
    adapter = save_adapter("lora", tmp_path / "a", 2)
    name = _name()
    with Registry.open(served.url, token=served.tokens["writer"]) as remote:
        with pytest.raises(ArgumentError, match=r"in full: .*pass --base-path DIR") as caught:
            remote.push(adapter, name=name, exhaustive_base=True)
        assert "\n" not in str(caught.value)
        assert remote.list(name=name) == []
