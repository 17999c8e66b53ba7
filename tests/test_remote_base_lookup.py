"""Where a push through a server looks for the base an adapter names: on the client's
machine, as a local push looks on its own, and never on the server's disk (a client's
names and paths mean nothing there, and what is there is not the client's to probe)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest
from support.handmade import write_adapter
from support.models import base_model, save_base
from support.server import ServedRegistry, stage_uploads

from registry import Registry
from registry.store.push import NOT_LOOKED_UP


@pytest.fixture(scope="module")
def server(served: ServedRegistry) -> ServedRegistry:
    """The module's server, on each server backend (support/server_matrix.py)."""
    return served


def _naming(directory: Path, base: str) -> Path:
    """``directory``'s adapter, its config naming ``base``."""
    config_path = directory / "adapter_config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "base_model_name_or_path": base}))
    return directory


def test_the_server_does_not_look_for_a_named_base_on_its_own_disk(
    server: ServedRegistry, tmp_path: Path
) -> None:
    # A directory of base weights on the machine the server runs on, named by the adapter.
    weights = save_base(base_model(), tmp_path / "server-side" / "base")
    adapter = _naming(write_adapter(tmp_path / "a", seed=41), str(weights))
    with httpx2.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.tokens['writer']}"}
    ) as http:
        files = stage_uploads(http, adapter)
        answer = http.post("/api/v1/push", json={"files": files, "name": "probe"})
    assert answer.status_code == 201, answer.text
    result = answer.json()
    note = result["base_unverified"]
    assert NOT_LOOKED_UP in note
    # No path of the server's (its Hugging Face cache, say) in what a client reads.
    assert str(tmp_path) not in note.replace(str(weights), "NAME")
    assert "cache" not in note
    assert result["version"]["manifest"]["base_model"].get("fingerprint") is None


def test_a_base_on_the_clients_machine_is_fingerprinted_there(
    server: ServedRegistry, tmp_path: Path
) -> None:
    weights = save_base(base_model(), tmp_path / "client-side" / "base")
    with Registry.open(tmp_path / "local", create=True) as local:
        expected = local.push(_naming(write_adapter(tmp_path / "l", seed=42), str(weights)))
    assert expected.base_unverified is None
    with Registry.open(server.url, token=server.tokens["writer"]) as remote:
        pushed = remote.push(_naming(write_adapter(tmp_path / "r", seed=42), str(weights)))
    assert pushed.base_unverified is None
    fingerprint = pushed.version.base_model.fingerprint
    assert fingerprint is not None and fingerprint == expected.version.base_model.fingerprint


def test_an_unfound_base_says_where_the_client_looked(
    server: ServedRegistry, tmp_path: Path
) -> None:
    with Registry.open(server.url, token=server.tokens["writer"]) as remote:
        pushed = remote.push(_naming(write_adapter(tmp_path / "u", seed=43), "nowhere/base"))
    note = pushed.base_unverified
    assert note is not None
    assert "nowhere/base is not a local directory" in note
    assert NOT_LOOKED_UP not in note


def test_a_fingerprinted_record_on_the_server_is_used_as_a_local_push_uses_it(
    server: ServedRegistry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded = save_base(base_model(), tmp_path / "recorded")
    # Other weights under the same name on the client: a local push with a fingerprinted
    # record of that name does not look for them, and neither does the client.
    monkeypatch.chdir(tmp_path)
    save_base(base_model(seed=9), tmp_path / "team-base" / "v1")
    with Registry.open(server.url, token=server.tokens["admin"]) as admin:
        record = admin.add_base(recorded, name="team-base/v1")
    with Registry.open(server.url, token=server.tokens["writer"]) as remote:
        pushed = remote.push(_naming(write_adapter(tmp_path / "k", seed=44), "team-base/v1"))
    assert pushed.base_unverified is None
    assert pushed.version.base_model.fingerprint == record.content_digest
