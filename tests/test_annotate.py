"""Tags and a description changed after the push: `adapters tag`, `adapters describe`,
`Registry.set_tags` and `Registry.describe`, each audited, shown by show and list."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.handmade import write_adapter
from support.lifecycle import insert, manifest, one_line_error, run

from registry import Registry
from registry.errors import ArgumentError, InvalidNameError, NotFoundError


def _events(reg: Registry, action: str) -> list[dict[str, object]]:
    return [e.details for e in reg.log(actions=[action])]


def test_tag_adds_replaces_and_removes_with_an_audit_event(registry: Registry) -> None:
    insert(registry.catalog, "sql", manifest(1), version="1", tags={"team": "nlp"}, alias="prod")
    added = run("tag", "sql@prod", "stage=dev", "team=data")
    assert added.exit_code == 0, added.output
    assert added.stdout.strip() == "sql@1 stage=dev, team=data"
    assert registry.get("sql@1").tags == {"stage": "dev", "team": "data"}
    removed = run("tag", "sql@1", "--rm", "stage", "--json")
    assert json.loads(removed.stdout)["tags"] == {"team": "data"}
    assert json.loads(run("list", "--json").stdout)[0]["tags"] == {"team": "data"}
    assert "tags         team=data" in run("show", "sql@1").stdout
    events = _events(registry, "tag")
    assert [e["set"] for e in events] == [{"stage": "dev", "team": "data"}, {}]
    assert [e["removed"] for e in events] == [[], ["stage"]]
    assert events[0]["previous"] == {"team": "nlp"}
    same = run("tag", "sql@1", "team=data")
    assert same.exit_code == 0 and "nothing changed" in same.stderr
    assert len(_events(registry, "tag")) == 2  # no event for no change


def test_bad_tag_changes_are_refused_whole(registry: Registry) -> None:
    insert(registry.catalog, "sql", manifest(1), version="1", tags={"team": "nlp"})
    absent = run("tag", "sql@1", "stage=prod", "--rm", "owner")
    assert absent.exit_code == 1 and one_line_error(absent)
    assert "has no tag owner; its tags: team" in absent.stderr
    assert registry.get("sql@1").tags == {"team": "nlp"}  # stage=prod was not half-applied
    nothing = run("tag", "sql@1")
    assert nothing.exit_code == 1 and "no tags given" in nothing.stderr
    assert run("tag", "sql@1", "novalue").exit_code == 2
    try:
        registry.set_tags("sql@1", {"bad key": "x", "a": "b"}, remove=["a"])
    except ArgumentError as exc:  # every problem at once
        assert "invalid tag key 'bad key'" in str(exc) and "both set and removed" in str(exc)
    else:
        raise AssertionError("expected ArgumentError")
    try:
        registry.set_tags("sql@1", {"bad key": "x"})
    except InvalidNameError:
        pass
    else:
        raise AssertionError("expected InvalidNameError")
    try:
        registry.set_tags("nope@1", {"a": "b"})
    except NotFoundError:
        pass
    else:
        raise AssertionError("expected NotFoundError")
    assert _events(registry, "tag") == []


def test_a_push_takes_only_tags_that_tag_would_take(registry: Registry, tmp_path: Path) -> None:
    directory = write_adapter(tmp_path / "tagged", seed=5)
    for tags, says in (
        ({"k": "é" * 1001}, "at most 1000 characters"),
        ({"k": "a\x01b"}, "printable text"),
        ({"k\x00": "v"}, "invalid tag key"),
        ({"k" * 129: "v"}, "invalid tag key"),
    ):
        with pytest.raises((ArgumentError, InvalidNameError), match=says) as caught:
            registry.push(directory, name="tagged", tags=tags)
        assert "\n" not in str(caught.value)
    assert registry.list(name="tagged") == []
    pushed = registry.push(directory, name="tagged", tags={"k": "é" * 1000, "言語": "日本語"})
    assert registry.get(pushed.version.ref).tags == {"k": "é" * 1000, "言語": "日本語"}


def test_describe_sets_shows_and_clears(registry: Registry) -> None:
    insert(registry.catalog, "sql", manifest(1), version="1")
    done = run("describe", "sql@1", "SQL generation, trained on spider")
    assert done.exit_code == 0, done.output
    assert registry.get("sql").description == "SQL generation, trained on spider"
    assert "description  SQL generation, trained on spider" in run("show", "sql@1").stdout
    assert json.loads(run("list", "--json").stdout)[0]["description"] == (
        "SQL generation, trained on spider"
    )
    change = registry.describe("sql@1", "two\nlines")
    assert change.previous == "SQL generation, trained on spider" and change.changed
    cleared = run("describe", "sql@1", "", "--json")
    assert json.loads(cleared.stdout)["description"] is None
    assert registry.get("sql@1").description is None
    assert [e["description"] for e in _events(registry, "describe")] == [
        "SQL generation, trained on spider",
        "two\nlines",
        None,
    ]
    bad = run("describe", "sql@1", "bell\x07")
    assert bad.exit_code == 1 and one_line_error(bad) and "control characters" in bad.stderr
    assert run("log", "sql").stdout.count("describe") == 3
