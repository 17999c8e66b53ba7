"""A version on the Hub whose tags break the tag rules (pushed by an older release, or its
manifest edited on the Hub) is still pulled: its tags are annotations outside its digest, so
each bad one is left out and reported, the good ones are kept, and nothing else changes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.hub_emulator import HubEmulator
from support.peft_adapters import MadeAdapter

from registry import Registry
from registry.cli import main
from registry.hub.remote_manifest import MANIFEST_PATH

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

BAD_TAGS = {
    "notes": "x" * 1001,  # longer than a value may be
    "bell": "ring\x07",  # not printable
    "two words": "fine value",  # a key with a space
}
VALUE_RULE = "the value must be printable text of at most 1000 characters"
KEY_RULE = "the key must be 1 to 128 printable characters without spaces"


@pytest.fixture
def source(hub: HubEmulator, lora: MadeAdapter, tmp_path: Path) -> Registry:
    """my-lora@1 tagged team=nlp on the Hub, then the manifest there given three bad tags
    besides (written directly, as an older release or a hand edit would leave it)."""
    reg = Registry.open(tmp_path / "source", create=True)
    reg.push(lora.directory, tags={"team": "nlp"}, evals={"accuracy": 0.9})
    reg.hub.push("my-lora@1", "alice/my-lora")
    document = json.loads(hub.file_bytes("alice/my-lora", MANIFEST_PATH))
    document["tags"] = {**document["tags"], **BAD_TAGS}
    hub.put_files("alice/my-lora", {MANIFEST_PATH: json.dumps(document).encode()})
    return reg


def test_pull_keeps_the_good_tags_and_reports_each_bad_one(
    source: Registry, tmp_path: Path
) -> None:
    target = Registry.open(tmp_path / "target", create=True)
    result = target.hub.pull("alice/my-lora")
    expected = source.get("my-lora@1")

    assert result.digest == expected.digest
    assert result.push.created
    stored = target.get("my-lora@1")
    assert stored.tags == {"team": "nlp"}
    assert stored.digest == expected.digest
    assert dict(result.tags_left_out) == {
        "notes": VALUE_RULE,
        "bell": VALUE_RULE,
        "two words": KEY_RULE,
    }
    assert result.to_dict()["tags_left_out"][0] == {"key": "notes", "reason": VALUE_RULE}
    # Everything else as in any pull: the evals, the Hub link.
    assert [(e.metric, e.value) for e in stored.evals] == [("accuracy", 0.9)]
    assert [link.direction for link in target.hub.links("my-lora@1")] == ["pull"]
    assert target.verify("my-lora@1").ok


def test_cli_pull_says_one_line_per_tag_left_out(source: Registry, tmp_path: Path) -> None:
    home = tmp_path / "cli-target"
    Registry.open(home, create=True).close()
    result = CliRunner().invoke(main, ["--registry", str(home), "hub", "pull", "alice/my-lora"])
    assert result.exit_code == 0, result.output
    notes = [line for line in result.stderr.splitlines() if "was left out" in line]
    assert notes == [
        f"note: tag 'notes' was left out: {VALUE_RULE}",
        f"note: tag 'bell' was left out: {VALUE_RULE}",
        f"note: tag 'two words' was left out: {KEY_RULE}",
    ]
    assert result.stdout.strip().endswith(f"my-lora@1 {source.get('my-lora@1').digest}")

    assert CliRunner().invoke(main, ["init", str(tmp_path / "j")]).exit_code == 0
    pulled = CliRunner().invoke(
        main, ["--registry", str(tmp_path / "j"), "hub", "pull", "alice/my-lora", "--json"]
    )
    assert pulled.exit_code == 0, pulled.output
    document = json.loads(pulled.stdout)
    assert [t["key"] for t in document["tags_left_out"]] == ["notes", "bell", "two words"]
    assert document["version"]["tags"] == {"team": "nlp"}
