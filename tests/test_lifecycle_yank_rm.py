"""Yank (PEP 592), unyank and rm, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from sqlalchemy import text
from support.handmade import write_lora
from support.lifecycle import one_line_error, run

from registry import Registry
from registry.errors import ConflictError, InvalidNameError, NotFoundError, YankedVersionWarning


@pytest.fixture
def versions(registry: Registry, tmp_path: Path) -> Registry:
    for seed, version in ((1, "1.0"), (2, "1.5"), (3, "2.0")):
        registry.push(write_lora(tmp_path / f"v{seed}", seed), name="x", version=version)
    return registry


def resolve_quietly(registry: Registry, ref: str) -> tuple[str, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        version = registry.get(ref).version
    return version, [str(w.message) for w in caught if w.category is YankedVersionWarning]


# -- yank -----------------------------------------------------------------------------------


def test_yank_follows_pep_592(versions: Registry) -> None:
    versions.set_alias("x@1.5", "prod")
    change = versions.yank("x@1.5", "trained on the eval set")
    assert (change.status, change.reason, change.aliases) == (
        "yanked",
        "trained on the eval set",
        ("prod",),
    )
    assert versions.yank("x@2.0", "broken").changed
    # Bare names and specifiers skip yanked versions ...
    assert resolve_quietly(versions, "x") == ("1.0", [])
    assert resolve_quietly(versions, "x>=1.0,<3") == ("1.0", [])
    with pytest.raises(NotFoundError, match=r"no version matching '>1\.0'"):
        versions.get("x>1.0")
    # ... exact pins still resolve, with a warning naming the reason.
    for ref, expected in (("x@1.5", "1.5"), ("x==2.0", "2.0"), ("x@prod", "1.5")):
        version, caught = resolve_quietly(versions, ref)
        assert version == expected
        assert len(caught) == 1 and "is yanked" in caught[0]
    assert "trained on the eval set" in resolve_quietly(versions, "x@1.5")[1][0]
    digest = versions.get("x@1.0").digest
    versions.yank(f"x@{digest[:19]}", "all gone")
    with pytest.raises(NotFoundError, match="x has no version that is not yanked"):
        versions.get("x")


def test_yank_cli_and_warning_on_pinned_use(versions: Registry, tmp_path: Path) -> None:
    done = run("yank", "x@2.0", "--reason", "NaNs in layer 3")
    assert done.exit_code == 0 and done.stdout.strip() == "yanked x@2.0: NaNs in layer 3"
    shown = run("show", "x@2.0")
    assert shown.exit_code == 0
    assert shown.stderr.strip() == (
        "warning: x@2.0 is yanked (NaNs in layer 3); it resolved only because it was pinned exactly"
    )
    assert run("show", "x").stderr == "" and "x@1.5" in run("show", "x").stdout
    exported = run("export", "x@2.0", str(tmp_path / "out"))
    assert exported.exit_code == 0 and "warning: x@2.0 is yanked" in exported.stderr
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()
    listed = run("list", "--status", "yanked", "--json")
    assert [v["ref"] for v in json.loads(listed.stdout)] == ["x@2.0"]
    assert "(yanked)" in run("list").stdout
    assert [v["ref"] for v in json.loads(run("list", "--status", "active", "--json").stdout)] == [
        "x@1.0",
        "x@1.5",
    ]


def test_reyank_replaces_reason_and_unyank_restores(versions: Registry) -> None:
    versions.yank("x@2.0", "first reason")
    again = run("yank", "x@2.0", "--reason", "first reason")
    assert again.exit_code == 0 and "already yanked" in again.stdout
    updated = versions.yank("x@2.0", "better reason")
    assert (updated.previous_reason, updated.reason) == ("first reason", "better reason")
    unyanked = run("unyank", "x@2.0", "--json")
    assert json.loads(unyanked.stdout)["status"] == "active"
    assert resolve_quietly(versions, "x") == ("2.0", [])
    not_yanked = run("unyank", "x@2.0")
    assert not_yanked.exit_code == 0 and "was not yanked" in not_yanked.stdout
    events = [(e.action, e.details.get("reason")) for e in versions.log("x@2.0")]
    assert events == [
        ("push", None),
        ("yank", "first reason"),
        ("yank", "better reason"),
        ("unyank", None),
    ]


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["yank", "x@2.0"], 2, "--reason"),
        (["yank", "x@2.0", "--reason", "  "], 1, "a yank needs a reason"),
        (["yank", "x", "--reason", "r"], 1, "yank needs an exact version"),
        (["yank", "x>=1", "--reason", "r"], 1, "yank needs an exact version"),
        (["yank", "x@prod", "--reason", "r"], 1, "yank needs an exact version"),
        (["yank", "x@3", "--reason", "r"], 1, "x has no version 3"),
        (["yank", "x@2.0", "--reason", "a\x00b"], 1, "control characters"),
        (["unyank", "x"], 1, "unyank needs an exact version"),
        (["rm", "x"], 1, "rm needs an exact version"),
        (["rm", "x@9"], 1, "x has no version 9"),
        (["rm", "nope@1"], 1, "no adapter named 'nope'"),
    ],
)
def test_bad_yank_and_rm_change_nothing(
    versions: Registry, args: list[str], code: int, expected: str
) -> None:
    before = len(versions.log())
    result = run(*args)
    assert result.exit_code == code, result.output
    assert expected in result.output
    if code == 1:
        assert one_line_error(result)
    assert len(versions.log()) == before
    assert [v.status for v in versions.list()] == ["active"] * 3


# -- rm --------------------------------------------------------------------------------------


def test_rm_refused_while_an_alias_points_at_it(versions: Registry) -> None:
    versions.set_alias("x@1.5", "prod")
    versions.set_alias("x@1.5", "canary")
    refused = run("rm", "x@1.5")
    assert refused.exit_code == 1 and one_line_error(refused)
    assert "x@canary, x@prod" in refused.stderr and "--force" in refused.stderr
    assert versions.get("x@prod").version == "1.5"
    with pytest.raises(ConflictError):
        versions.remove("x@1.5")
    forced = run("rm", "x@1.5", "--force", "--reason", "deletion request 42")
    assert forced.exit_code == 0, forced.output
    assert "removed alias x@canary" in forced.stderr and "removed alias x@prod" in forced.stderr
    with pytest.raises(NotFoundError):
        versions.get("x@prod")
    history = [
        (c.alias, c.action, c.previous, c.version, c.note) for c in versions.alias_history("x")
    ]
    assert ("prod", "rm-version", "1.5", None, "deletion request 42") in history
    [event] = versions.log("x", actions=["rm"])
    assert event.version == "1.5"
    assert event.details["forced"] is True
    assert event.details["aliases_removed"] == ["canary", "prod"]
    assert event.details["reason"] == "deletion request 42"
    assert event.details["manifest"]["method"] == "lora"


ORPHAN_CHECKS = [
    ("version_files", "version_id"),
    ("evals", "version_id"),
    ("tags", "version_id"),
    ("training_data", "version_id"),
    ("lineage_edges", "child_id"),
    ("aliases", "version_id"),
]


def test_rm_deletes_every_row_but_keeps_blobs_until_gc(versions: Registry) -> None:
    versions.record_eval("x@2.0", {"accuracy": 0.5})
    removed_version = versions.get("x@2.0")
    removal = versions.remove("x@2.0")
    assert removal.unreferenced_bytes > 0
    with pytest.raises(NotFoundError):
        versions.get("x@2.0")
    for table, column in ORPHAN_CHECKS:
        with versions.catalog.engine.connect() as connection:
            orphans = connection.execute(
                text(
                    f"SELECT count(*) FROM {table} "
                    f"WHERE {column} NOT IN (SELECT id FROM adapter_versions)"
                )
            ).scalar_one()
        assert orphans == 0, table
    # Blobs stay until gc, which frees exactly what the removal announced.
    assert all(versions.blobs.exists(f.sha256) for f in removed_version.files)
    collected = versions.gc()
    assert sum(b.size for b in collected.blobs) == removal.unreferenced_bytes
    # The events of a removed version stay in the log.
    assert [e.action for e in versions.log("x@2.0")] == ["push", "eval", "rm"]


def test_removed_version_numbers_are_never_reused(versions: Registry, tmp_path: Path) -> None:
    original = versions.get("x@2.0")
    versions.remove("x@2.0")
    other = write_lora(tmp_path / "other", 99)
    refused = run("push", str(other), "--name", "x", "--version", "2")
    assert refused.exit_code == 1 and "never reused" in refused.stderr
    automatic = versions.push(other, name="x")
    assert automatic.version.version == "3"
    # The same content may come back under its old number (undoing a mistaken rm).
    restored = versions.push(tmp_path / "v3", name="x", version="2.0")
    assert restored.version.digest == original.digest and restored.version.version == "2.0"
    with pytest.raises(InvalidNameError):
        versions.remove("x@prod")
