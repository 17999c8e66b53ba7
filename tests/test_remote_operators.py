"""Operators through a registry server: combine, resize, extract and merge run on the client
over verified blobs from its cache, and give the same adapter bytes, digests and lineage as
the same calls on a local registry; the server checks what a client pushes with a lineage."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest
import torch
from support.models import base_model, save_base
from support.ops_adapters import save_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.errors import AccessError, ArgumentError, RegistryError
from registry.remote import wire
from registry.remote.codec import encode
from registry.remote.upload import Upload
from registry.store.manifest import BaseModelRef, Lineage, ParentRef


@pytest.fixture(scope="module")
def server(served: ServedRegistry) -> ServedRegistry:
    """The module's server, on each server backend (support/server_matrix.py)."""
    return served


@pytest.fixture
def pair(server: ServedRegistry, tmp_path: Path) -> Iterator[tuple[Registry, Registry]]:
    local = Registry.open(tmp_path / "local-home", create=True)
    remote = Registry.open(server.url, token=server.tokens["maintainer"])
    try:
        yield local, remote
    finally:
        local.close()
        remote.close()


@pytest.fixture
def prefix() -> str:
    """Names of this test's own (the server is shared by the module); the same on both
    sides, as a lineage names its parents."""
    return f"op{uuid.uuid4().hex[:8]}"


def _files(registry: Registry, ref: str, out: Path) -> dict[str, bytes]:
    registry.export(ref, out)
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_combine_and_resize_match_a_local_run(
    pair: tuple[Registry, Registry], prefix: str, tmp_path: Path
) -> None:
    local, remote = pair
    base_dir = save_base(base_model(), tmp_path / "base")
    a, b = f"{prefix}/a", f"{prefix}/b"
    for reg in pair:
        pushed = reg.push(save_adapter("lora", tmp_path / "a", 1), name=a, base_path=base_dir)
        assert pushed.base_unverified is None  # fingerprinted, on the client for the server
        reg.push(save_adapter("lora_r8_qkv", tmp_path / "b", 2), name=b, base_path=base_dir)
    assert remote.get(a).digest == local.get(a).digest
    assert remote.get(a).base_model == local.get(a).base_model

    combined = [
        reg.combine([f"{a}@1", b], name=f"{prefix}/ab", method="svd", weights=[0.7, 0.3], rank=4)
        for reg in pair
    ]
    mine, theirs = combined
    assert theirs.created and theirs.version.ref == f"{prefix}/ab@1"
    assert theirs.version.digest == mine.version.digest
    assert theirs.version.manifest == mine.version.manifest
    assert theirs.lineage == mine.lineage and theirs.notes == mine.notes
    assert _files(remote, f"{prefix}/ab", tmp_path / "r") == _files(
        local, f"{prefix}/ab", tmp_path / "l"
    )
    # the server recorded the edges: the parents list the new version as a descendant
    report = remote.lineage(f"{a}@1")
    assert [d.ref for d in report.descendants] == [f"{prefix}/ab@1"]
    assert [n.ref for n in remote.lineage(f"{prefix}/ab").ancestors] == [f"{a}@1", f"{b}@1"]
    again = remote.combine([a, b], name=f"{prefix}/ab", method="svd", weights=[0.7, 0.3], rank=4)
    assert not again.created and again.version.digest == mine.version.digest

    resized = [reg.resize(f"{prefix}/ab", 2, name=f"{prefix}/small", alias="s") for reg in pair]
    assert resized[1].version.digest == resized[0].version.digest
    assert resized[1].version.aliases == resized[0].version.aliases == ("s",)
    assert resized[1].version.manifest.lineage == resized[0].version.manifest.lineage


def test_extract_and_merge_match_a_local_run(
    pair: tuple[Registry, Registry], prefix: str, tmp_path: Path
) -> None:
    remote = pair[1]
    base_dir = save_base(base_model(), tmp_path / "base")
    tuned = base_model()
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if name.endswith("q_proj.weight"):
                param.add_(torch.outer(torch.ones(param.shape[0]), torch.ones(param.shape[1])))
    tuned_dir = save_base(tuned, tmp_path / "tuned")
    name = f"{prefix}/sft"
    extracted = [
        reg.extract(base_dir, tuned_dir, 1, name=name, base_name=f"{prefix}/tiny") for reg in pair
    ]
    assert extracted[1].version.digest == extracted[0].version.digest
    assert extracted[1].version.base_model.fingerprint  # recorded from the client's record
    assert extracted[1].lineage == extracted[0].lineage
    record = next(r for r in remote.bases() if r.name == f"{prefix}/tiny")
    assert "client" in record.source and "not seen by the server" in record.source

    merged = [
        reg.merge_into_base(name, base_dir, tmp_path / f"merged-{i}")
        for i, reg in enumerate(pair)
    ]
    assert merged[1].digest == merged[0].digest and merged[1].compat.ok
    for file in (tmp_path / "merged-0").iterdir():
        assert (tmp_path / "merged-1" / file.name).read_bytes() == file.read_bytes()


def _raw_push(server: ServedRegistry, token: str, body: wire.PushBody) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {server.tokens[token]}"}
    return httpx2.post(f"{server.url}/api/v1/push", json=encode(body), headers=headers)


def test_the_server_checks_a_pushed_lineage(
    server: ServedRegistry, prefix: str, tmp_path: Path
) -> None:
    from support.handmade import write_adapter

    writer = Registry.open(server.url, token=server.tokens["writer"])
    parent = writer.push(write_adapter(tmp_path / "p", seed=1), name=f"team/{prefix}").version
    upload = Upload.of(write_adapter(tmp_path / "c", seed=2))
    upload.send_each(writer._send)  # type: ignore[attr-defined]
    files = upload.files
    ref = ParentRef(parent.name, parent.version, parent.digest, None)

    def body(lineage: Lineage, **kw: object) -> wire.PushBody:
        return wire.PushBody(files=files, name=f"{prefix}/child", lineage=lineage, **kw)  # type: ignore[arg-type]

    # a parent outside the token's namespace: 403, naming nothing of it
    outside = _raw_push(server, "team-writer", body(Lineage("resize", (ref,))))
    assert outside.status_code == 403 and parent.digest not in outside.text
    fake = ParentRef(parent.name, parent.version, "sha256:" + "0" * 64, None)
    missing = _raw_push(server, "writer", body(Lineage("resize", (fake,))))
    assert missing.status_code == 400 and "not stored here" in missing.json()["error"]["message"]
    with pytest.raises(ArgumentError, match="not stored here"):  # the one-request push too
        upload.send_bundle(writer._send, body(Lineage("resize", (fake,))))  # type: ignore[attr-defined]
    not_theirs = BaseModelRef("x", None, "sha256:" + "1" * 64)
    claimed = body(Lineage("resize", (ref,)), exact_base=not_theirs)
    refused = _raw_push(server, "writer", claimed)
    assert refused.status_code == 400 and "exact_base" in refused.json()["error"]["message"]
    document = json.dumps({"algorithm": "afp-1", "content": "nope"}).encode()
    sha = hashlib.sha256(document).hexdigest()
    writer._send("PUT", f"/uploads/{sha}", content=document)  # type: ignore[attr-defined]
    forged = wire.ClientBase("here", sha)
    bad = _raw_push(server, "writer", body(Lineage("extract", ()), base="b", base_record=forged))
    assert bad.status_code == 422
    absent = wire.ClientBase("here", "f" * 64)  # never uploaded
    unsent = _raw_push(server, "writer", body(Lineage("extract", ()), base="b", base_record=absent))
    assert unsent.status_code == 400 and "upload the fingerprint" in unsent.text
    assert writer.list(name=f"{prefix}/*") == []  # nothing recorded by any of them
    writer.close()

    team = Registry.open(server.url, token=server.tokens["team-writer"])
    with team, pytest.raises(AccessError):
        team.resize(f"{prefix}/nothing", 2, name="team/x")
    plain = Registry.open(server.url, token=server.tokens["writer"])
    with plain, pytest.raises(RegistryError, match="does not exist"):  # as a local push says
        plain.push(tmp_path / "c", name=f"{prefix}/x", base_path=tmp_path / "absent")


def test_the_cli_runs_operators_and_annotations_against_the_server(
    server: ServedRegistry, prefix: str, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from support.server import ROOT

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "ADAPTERS_URL": server.url,
               "ADAPTERS_TOKEN": server.tokens["maintainer"]}  # fmt: skip
        return subprocess.run([sys.executable, "-m", "registry.cli", *args],
                              capture_output=True, text=True, env=env, timeout=300)  # fmt: skip

    base_dir = save_base(base_model(), tmp_path / "base")
    added = cli("base", "add", str(base_dir), "--name", f"{prefix}/base", "--json")
    assert added.returncode == 0, added.stderr
    a = save_adapter("lora", tmp_path / "a", 1)
    pushed = cli("push", str(a), "--name", f"{prefix}/a", "--base", f"{prefix}/base")
    assert pushed.returncode == 0, pushed.stderr
    resized = cli("resize", f"{prefix}/a", "--rank", "2", "--name", f"{prefix}/r", "--json")
    assert resized.returncode == 0, resized.stderr
    assert json.loads(resized.stdout)["lineage"]["operation"] == "resize"
    assert cli("tag", f"{prefix}/r", "stage=dev").returncode == 0
    assert cli("describe", f"{prefix}/r", "smaller").returncode == 0
    listed = cli("base", "list")
    assert listed.returncode == 0 and f"{prefix}/base" in listed.stdout, listed.stderr
    into = tmp_path / "served"
    laid = cli("materialize", f"{prefix}/r", "--into", str(into))
    assert laid.returncode == 0, laid.stderr
    with Registry.open(server.url, token=server.tokens["reader"]) as reader:
        version = reader.get(f"{prefix}/r")
        assert version.tags == {"stage": "dev"} and version.base_model.fingerprint
        assert reader.lineage(version.ref).ancestors[0].ref == f"{prefix}/a@1"
    assert (into / f"{prefix}--r" / "adapter_config.json").is_file()
