"""A version named NS/... derived from parents outside NS/ would show those parents' names
and digests to NS/'s tokens (its manifest records them, so they cannot be hidden without
changing its digest). The server refuses such a push, whoever sends it, unless the push says
it is meant (``allow_lineage_outside_namespace`` / ``--allow-lineage-outside-namespace``);
the audit event of an allowed one records that it was allowed."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.handmade import write_adapter
from support.server import ServedRegistry

from registry import Registry
from registry.cli import main
from registry.errors import ConflictError

FLAG = "--allow-lineage-outside-namespace"


@pytest.fixture
def prefix() -> str:
    return f"ln{uuid.uuid4().hex[:8]}"


def _push_events(registry: Registry, ref: str) -> list[dict[str, object]]:
    return [e.details for e in registry.log(ref) if e.action == "push"]


def test_outside_parents_are_refused_unless_allowed(
    served: ServedRegistry, prefix: str, tmp_path: Path
) -> None:
    admin = Registry.open(served.url, token=served.tokens["admin"])
    team_reader = Registry.open(served.url, token=served.tokens["team-reader"])
    with admin, team_reader:
        a = admin.push(write_adapter(tmp_path / "a", seed=1), name=f"{prefix}-a").version
        b = admin.push(write_adapter(tmp_path / "b", seed=2), name=f"{prefix}-b").version
        target = f"team/{prefix}-ab"

        with pytest.raises(ConflictError) as caught:
            admin.combine([a.ref, b.ref], name=target, method="cat")
        message = str(caught.value)
        assert "\n" not in message
        assert f"{a.ref}, {b.ref}" in message and "outside team/" in message
        assert FLAG in message and "allow_lineage_outside_namespace=True" in message
        assert admin.list(name=target) == []
        assert not [e for e in admin.log() if e.name == target]  # nothing recorded

        made = admin.combine(
            [a.ref, b.ref], name=target, method="cat", allow_lineage_outside_namespace=True
        )
        assert made.created and made.version.ref == f"{target}@1"
        [event] = _push_events(admin, made.version.ref)
        assert event["lineage_outside_namespace"] is True

        # What the flag allowed: the namespace's tokens see the version and its parents.
        seen = team_reader.get(made.version.ref)
        assert seen.digest == made.version.digest
        lineage = seen.manifest.lineage
        assert lineage is not None
        assert [(p.name, p.digest) for p in lineage.parents] == [
            (a.name, a.digest),
            (b.name, b.digest),
        ]


def test_parents_inside_the_namespace_need_no_flag(
    served: ServedRegistry, prefix: str, tmp_path: Path
) -> None:
    with Registry.open(served.url, token=served.tokens["team-writer"]) as team:
        parent = team.push(write_adapter(tmp_path / "p", seed=3), name=f"team/{prefix}-p").version
        made = team.resize(parent.ref, 2, name=f"team/{prefix}-r2")
        assert made.created
        [event] = _push_events(team, made.version.ref)
        assert "lineage_outside_namespace" not in event
    # A version outside every namespace needs no flag either.
    with Registry.open(served.url, token=served.tokens["writer"]) as plain:
        made = plain.resize(parent.ref, 2, name=f"{prefix}-plain")
        assert made.created


def test_the_cli_flag(served: ServedRegistry, prefix: str, tmp_path: Path) -> None:
    with Registry.open(served.url, token=served.tokens["writer"]) as writer:
        parent = writer.push(write_adapter(tmp_path / "p", seed=4), name=f"{prefix}-p").version
        target = f"team/{prefix}-r2"
        env = {"ADAPTERS_TOKEN": served.tokens["writer"]}
        args = ["--registry", served.url, "resize", parent.ref, "--rank", "2", "--name", target]

        refused = CliRunner().invoke(main, args, env=env)
        assert refused.exit_code == 1
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and FLAG in lines[0]
        assert writer.list(name=target) == []

        allowed = CliRunner().invoke(main, [*args, FLAG], env=env)
        assert allowed.exit_code == 0, allowed.output
        assert allowed.stdout.startswith(f"{target}@1 ")
        [event] = _push_events(writer, f"{target}@1")
        assert event["lineage_outside_namespace"] is True


def test_a_local_registry_is_unaffected(tmp_path: Path) -> None:
    with Registry.open(tmp_path / "home", create=True) as local:
        parent = local.push(write_adapter(tmp_path / "p", seed=5), name="outside").version
        made = local.resize(parent.ref, 2, name="team/r2")
        assert made.created
        [event] = _push_events(local, made.version.ref)
        assert "lineage_outside_namespace" not in event
