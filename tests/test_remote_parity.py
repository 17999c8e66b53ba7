"""The same behaviour through a local ``Registry`` and through a server: each test runs on
both (``either``), and the results and errors must be the same."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import server_store
from support.handmade import write_adapter
from support.server import ServedRegistry
from support.server_matrix import ServerBackend

from registry import (
    ArgumentError,
    ConflictError,
    GateError,
    InvalidNameError,
    NotFoundError,
    Registry,
    YankedVersionWarning,
)


@pytest.fixture(params=["local", "remote"])
def either(
    request: pytest.FixtureRequest, served: ServedRegistry, tmp_path: Path
) -> Iterator[Registry]:
    """A registry on the server's backend: local, or the server's through its API."""
    with ExitStack() as stack:
        if request.param == "local":
            store = stack.enter_context(
                server_store(request, tmp_path, ServerBackend(served.backend))
            )
            patch = stack.enter_context(pytest.MonkeyPatch.context())
            if store.blob_url is not None:
                patch.setenv("ADAPTERS_BLOB_URL", store.blob_url)
            home = tmp_path / "local-home"
            reg = Registry.open(home, create=True, database_url=store.database_url)
        else:
            reg = Registry.open(served.url, token=served.tokens["admin"])
        try:
            yield reg
        finally:
            reg.close()


@pytest.fixture
def name() -> str:
    """A name of this test's own, as the remote registry is shared by the module."""
    return f"p{uuid.uuid4().hex[:10]}"


def test_push_get_and_identical_content(either: Registry, name: str, tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "a", seed=1)
    first = either.push(directory, name=name, evals={"acc": 0.5}, tags={"k": "v"})
    again = either.push(directory, name=name)
    assert first.created and not again.created
    assert again.version.digest == first.version.digest
    got = either.get(f"{name}@{first.version.digest[:19]}")
    assert got.ref == f"{name}@1" and got.tags == {"k": "v"}
    assert [s.metric for s in got.evals] == ["acc"]
    assert got.manifest == first.version.manifest


def test_resolution_and_yanked_versions(either: Registry, name: str, tmp_path: Path) -> None:
    for seed in (1, 2, 3):
        either.push(write_adapter(tmp_path / str(seed), seed=seed), name=name)
    assert either.get(name).version == "3"
    assert either.get(f"{name}>=1,<3").version == "2"
    either.yank(f"{name}@3", "bad")
    assert either.get(name).version == "2"
    with pytest.warns(YankedVersionWarning):
        assert either.get(f"{name}@3").yanked
    assert either.unyank(f"{name}@3").status == "active"
    with pytest.raises(NotFoundError):
        either.get(f"{name}@9")
    with pytest.raises(InvalidNameError):
        either.get("Not A Name")


def test_list_filters_and_sorts(either: Registry, name: str, tmp_path: Path) -> None:
    for seed in (1, 2, 3):
        either.push(write_adapter(tmp_path / str(seed), seed=seed), name=name,
                    evals={"acc": seed / 10})  # fmt: skip
    assert [v.version for v in either.list(name=name, sort="acc")] == ["3", "2", "1"]
    assert [v.version for v in either.list(name=name, where=["acc>=0.2"])] == ["2", "3"]
    assert [v.version for v in either.list(name=name, sort="version", limit=1)] == ["1"]
    with pytest.raises(ArgumentError):
        either.list(name=name, sort="acc", limit=0)


def test_aliases_gates_and_removal(either: Registry, name: str, tmp_path: Path) -> None:
    either.push(write_adapter(tmp_path / "1", seed=1), name=name, evals={"acc": 0.8})
    change = either.set_alias(f"{name}@1", "prod", requires=["acc>=0.5"], note="ok")
    assert (change.version, change.action, change.note) == ("1", "set", "ok")
    with pytest.raises(GateError) as refused:
        either.set_alias(f"{name}@1", "best", requires=["acc>=0.9"])
    assert len(refused.value.unmet) == 1
    assert not either.check_alias(f"{name}@1", "best", requires=["acc>=0.9"]).ok
    with pytest.raises(ConflictError):
        either.remove(f"{name}@1")
    removal = either.remove(f"{name}@1", force=True, reason="gone")
    assert removal.aliases_removed == ("prod",)
    assert either.list(name=name) == []


def test_evals_log_lineage_compare(either: Registry, name: str, tmp_path: Path) -> None:
    a = either.push(write_adapter(tmp_path / "1", seed=1), name=name).version
    b = either.push(write_adapter(tmp_path / "2", seed=2), name=name).version
    record = either.record_eval(a.ref, {"f1": 0.25}, dataset="d", notes="n")
    assert [(s.metric, s.value, s.dataset) for s in record.scores] == [("f1", 0.25, "d")]
    actions = [e.action for e in either.log(f"{name}@1")]
    assert actions == ["push", "eval"]
    assert either.lineage(a.ref).ancestors == ()
    comparison = either.compare(a.ref, b.ref)
    assert comparison.digest_a == a.digest and comparison.digest_b == b.digest
    assert comparison.similarity  # computed in the server, the same numbers as locally


def test_export_is_the_same(either: Registry, name: str, tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "a", seed=4)
    either.push(directory, name=name)
    result = either.export(name, tmp_path / "out")
    assert sorted(result.files) == sorted(p.name for p in directory.iterdir())
    for file in result.files:
        assert (tmp_path / "out" / file).read_bytes() == (directory / file).read_bytes()


def test_load_puts_the_adapter_on_the_model(either: Registry, name: str, tmp_path: Path) -> None:
    from support.handmade import tiny_model

    either.push(write_adapter(tmp_path / "a", seed=5), name=name)
    model = tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    # pushed without base weights (remote pushes do not fingerprint); accepted explicitly
    with either.load(name, model, mode="native", allow_unverified_base=True):
        changed = [k for k, v in model.state_dict().items() if not v.equal(before[k])]
        assert changed
    assert all(v.equal(before[k]) for k, v in model.state_dict().items())


def test_load_unmerged_adds_the_branch_at_forward_time(
    either: Registry, name: str, tmp_path: Path
) -> None:
    import torch
    from support.handmade import tiny_model

    either.push(write_adapter(tmp_path / "a", seed=5), name=name)
    model = tiny_model()
    q_proj = model.get_submodule("model.layers.0.self_attn.q_proj")
    x = torch.randn(3, q_proj.in_features, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    plain = q_proj(x)
    with either.load(name, model, mode="native", allow_unverified_base=True):
        merged = q_proj(x)
    with either.load(name, model, merge=False, allow_unverified_base=True) as handle:
        assert not handle.merged
        assert all(v.equal(before[k]) for k, v in model.state_dict().items())
        unmerged = q_proj(x)
    assert not unmerged.equal(plain)
    assert torch.allclose(unmerged, merged, atol=1e-5)
    assert q_proj(x).equal(plain) and not q_proj._forward_hooks
