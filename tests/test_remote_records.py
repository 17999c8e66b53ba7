"""Through a registry server: load and materialise under the server's signature policy
(checked on the client, against the files it re-hashed), tags and descriptions, and base
records fingerprinted on the client."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from support.handmade import tiny_model, write_adapter
from support.models import base_model, save_base
from support.server import ServedRegistry

from registry import Registry
from registry.errors import AccessError, ArgumentError, InvalidNameError, SignatureError
from registry.security.keys import Keyring


@pytest.fixture(scope="module")
def server(served: ServedRegistry) -> ServedRegistry:
    """The module's server, on each server backend (support/server_matrix.py)."""
    return served


def _client(server: ServedRegistry, role: str) -> Registry:
    return Registry.open(server.url, token=server.tokens[role])


def test_load_and_materialize_follow_the_servers_signature_policy(
    server: ServedRegistry, tmp_path: Path
) -> None:
    policy = server.home / "policy.json"
    with _client(server, "admin") as admin:
        version = admin.push(write_adapter(tmp_path / "a", seed=3), name="signed").version
        document = {"version": 1, "rules": [], "load": {"require_signature": True}}
        policy.write_text(json.dumps(document))
        try:
            model = tiny_model()
            before = {k: v.clone() for k, v in model.state_dict().items()}
            with pytest.raises(SignatureError, match="requires one to load it"):
                admin.load(version.ref, model, allow_unverified_base=True)
            assert all(v.equal(before[k]) for k, v in model.state_dict().items())
            with pytest.raises(SignatureError, match="to serve it"):
                admin.materialize(version.ref)

            with Registry.open(server.home, database_url=server.database_url) as local:
                Keyring(local.home.root, local.catalog).generate("release")
            admin.sign(version.ref, "release")
            with pytest.warns(UserWarning):  # no base recorded: accepted explicitly
                handle = admin.load(version.ref, model, allow_unverified_base=True)
            with handle:
                assert handle.mode == "native"
            folder = admin.materialize(version.ref)
            assert sorted(p.name for p in folder.iterdir()) == sorted(
                f.path for f in version.files
            )

            # a signature the server stores but that does not sign this version
            engine = create_engine(server.database_url)
            with engine.begin() as db:
                db.execute(text("UPDATE signatures SET signature = :s"), {"s": "A" * 86 + "=="})
            engine.dispose()
            with pytest.raises(SignatureError):
                admin.load(version.ref, tiny_model(), allow_unverified_base=True)
        finally:
            policy.unlink()
        assert admin.materialize(version.ref) == folder  # no policy: served again


def test_tags_descriptions_and_base_records(server: ServedRegistry, tmp_path: Path) -> None:
    local = Registry.open(tmp_path / "local", create=True)
    writer, maintainer = _client(server, "writer"), _client(server, "maintainer")
    try:
        pushed = writer.push(write_adapter(tmp_path / "a", seed=4), name="annotated").version
        change = writer.set_tags(pushed.ref, {"team": "nlp", "stage": "dev"})
        assert change.tags == {"stage": "dev", "team": "nlp"} and change.previous == {}
        assert writer.set_tags(pushed.ref, remove=["stage"]).tags == {"team": "nlp"}
        described = writer.describe(pushed.ref, "first try")
        assert (described.description, described.previous) == ("first try", None)
        assert writer.get(pushed.ref).tags == {"team": "nlp"}
        with pytest.raises(ArgumentError):
            writer.describe(pushed.ref, "bad \x07 text")

        base_dir = save_base(base_model(), tmp_path / "base")
        mine = local.add_base(base_dir, name="tiny/base@main")
        theirs = writer.add_base(base_dir, name="tiny/base@main")
        assert (theirs.name, theirs.revision) == (mine.name, mine.revision)
        assert theirs.content_digest == mine.content_digest
        assert "client" in theirs.source and "not seen by the server" in theirs.source
        other = writer.add_base(save_base(base_model(seed=2), tmp_path / "b2"), name="tiny/other")
        # Names the catalog cannot hold (PostgreSQL: no NUL, 256 characters at most).
        for bad in ("n" * 300, f"n@{'r' * 300}", "n\x00m", "n@r\x00"):
            with pytest.raises(InvalidNameError):
                writer.add_base(base_dir, name=bad)
        with pytest.raises(AccessError):
            writer.link_bases(other.ref, theirs.ref, "equivalent")
        relation = maintainer.link_bases(other.ref, theirs.ref, "equivalent")
        assert (relation.source, relation.target) == (other.ref, theirs.ref)
        assert relation in writer.base_relations()
        # a version named after the recorded base is checked against its weights
        named = writer.push(write_adapter(tmp_path / "n", seed=5), name="onbase",
                            base="tiny/base@main")  # fmt: skip
        assert named.base_unverified is None
        assert named.version.base_model.fingerprint == mine.content_digest
        laid = writer.materialize_into(["onbase", pushed.ref], tmp_path / "served")
        assert sorted(m.folder for m in laid) == ["annotated", "onbase"]
    finally:
        for reg in (local, writer, maintainer):
            reg.close()


def test_compat_load_and_merge_use_what_the_server_knows_of_the_base(
    server: ServedRegistry, tmp_path: Path
) -> None:
    from support.ops_adapters import save_adapter

    base_dir = save_base(base_model(), tmp_path / "base")
    with _client(server, "maintainer") as remote:
        pushed = remote.push(save_adapter("lora", tmp_path / "a", 1), name="late",
                             base="later/base")  # fmt: skip
        assert pushed.base_unverified is not None
        assert not remote.check_compat("late", base_dir).ok  # nothing recorded yet
        # recorded after the push, under the name the version gives: the server knows it
        remote.add_base(base_dir, name="later/base")
        report = remote.check_compat("late", base_dir)
        assert report.ok, report.summary()
        assert remote.check_compat("late", "later/base").ok  # the server's record as the base
        wrong = save_base(base_model(seed=7), tmp_path / "wrong")
        assert not remote.check_compat("late", wrong).ok
        checked = remote.verify("late", base=str(base_dir))
        assert checked.ok and any(c.name == "base weights" for c in checked.checks)
        assert not remote.verify("late", base=str(wrong)).ok
        with remote.load("late", base_model()):  # no allow_unverified_base needed
            pass
        merged = remote.merge_into_base("late", base_dir, tmp_path / "merged")
        assert merged.compat.ok
