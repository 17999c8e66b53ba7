"""``adapters hub push|pull|status`` and ``show``: output, JSON, exit codes; the token never
appears anywhere; an offline pull pinned to a commit works from the HF cache; progress
bars only on a terminal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from support.hub_emulator import HubEmulator
from support.peft_adapters import MadeAdapter, make_adapter

from registry import Registry
from registry.cli import main

# huggingface_hub's LFS upload passes a file as data=, which httpx2 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
SECRET = "hf_SECRET_do_not_leak_0123456789abcdef"


def new_registry(path: Path) -> Path:
    Registry.open(path, create=True).close()
    return path


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--registry", str(home), *args], catch_exceptions=False)


def test_push_pull_status_and_show(hub: HubEmulator, lora: MadeAdapter, tmp_path: Path) -> None:
    source = new_registry(tmp_path / "source")
    assert run(source, "push", str(lora.directory), "--eval", "accuracy=0.9").exit_code == 0

    pushed = run(source, "hub", "push", "my-lora@1", "alice/my-lora")
    assert pushed.exit_code == 0, pushed.output
    commit = hub.head("alice/my-lora").oid
    assert pushed.stdout.strip() == f"my-lora@1 -> alice/my-lora@v1 (commit {commit[:12]})"

    again = run(source, "hub", "push", "my-lora@1", "alice/my-lora", "--json")
    assert again.exit_code == 0
    result = json.loads(again.stdout)
    assert (result["committed"], result["commit"], result["tag"]) == (False, commit, "v1")

    status = run(source, "hub", "status", "my-lora@1")
    assert status.exit_code == 0 and "in-sync" in status.stdout

    target = new_registry(tmp_path / "target")
    pulled = run(target, "hub", "pull", "alice/my-lora@v1", "--json")
    assert pulled.exit_code == 0, pulled.output
    document = json.loads(pulled.stdout)
    assert document["commit"] == commit and document["with_manifest"] is True
    assert document["version"]["evals"][0]["value"] == 0.9

    shown = run(target, "show", "my-lora@1")
    assert "hub" in shown.stdout and "alice/my-lora" in shown.stdout and commit[:12] in shown.stdout
    shown_json = json.loads(run(target, "show", "my-lora@1", "--json").stdout)
    assert shown_json["hub"][0]["commit"] == commit
    assert shown_json["hub"][0]["direction"] == "pull"

    # Not in sync: exit 1, one row per repo.
    second = tmp_path / "second"
    make_adapter("lora", second, seed=3)
    assert run(source, "push", str(second), "--name", "my-lora").exit_code == 0
    ahead = run(source, "hub", "status", "my-lora@2", "--json")
    assert ahead.exit_code == 1
    assert json.loads(ahead.stdout)["repos"][0]["state"] == "local-ahead"


def test_errors_are_one_line_and_usage_is_exit_2(hub: HubEmulator, tmp_path: Path) -> None:
    home = new_registry(tmp_path / "reg")
    missing = run(home, "hub", "pull", "alice/nope")
    assert missing.exit_code == 1
    assert missing.stderr.count("\n") == 1 and missing.stderr.startswith("error: hub pull:")
    assert run(home, "hub", "push", "only-one-arg").exit_code == 2
    assert run(home, "hub", "pull", "alice/x@bad rev").exit_code == 1
    helped = run(home, "hub", "pull", "--help")
    assert helped.exit_code == 0 and "Example:" in helped.stdout


def test_the_token_appears_nowhere(
    hub: HubEmulator,
    lora: MadeAdapter,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hub.store.add_token(SECRET, "alice")
    monkeypatch.setenv("HF_TOKEN", SECRET)
    source = new_registry(tmp_path / "source")
    target = new_registry(tmp_path / "target")
    outputs = [run(source, "push", str(lora.directory))]
    for args in (
        ("hub", "push", "my-lora@1", "alice/my-lora", "--private"),
        ("hub", "push", "my-lora@1", "alice/my-lora", "--json"),
        ("hub", "status", "my-lora@1"),
        ("hub", "status", "my-lora@1", "--json"),
        ("show", "my-lora@1", "--json"),
        ("show", "my-lora@1"),
        ("log",),
    ):
        outputs.append(run(source, *args))
    for args in (
        ("hub", "pull", "alice/my-lora@v1"),
        ("hub", "pull", "alice/my-lora@v1", "--json"),
        ("show", "my-lora@1", "--json"),
        ("hub", "pull", "alice/nope"),  # an error message, too
    ):
        outputs.append(run(target, *args))
    codes = [r.exit_code for r in outputs]
    assert codes[:6] == [0] * 6 and codes[-4:] == [0, 0, 0, 1], [r.output for r in outputs]
    assert hub.requests and all(r.authenticated for r in hub.requests if r.path.startswith("/api"))
    for result in outputs:
        assert SECRET not in result.stdout and SECRET not in result.stderr
    for home in (source, target, tmp_path / "hf"):
        for path in home.rglob("*"):
            if path.is_file() and not path.is_symlink():
                assert SECRET.encode() not in path.read_bytes(), f"token found in {path}"
    for reg_home in (source, target):
        with Registry.open(reg_home) as reg:
            events = json.dumps([e.details for e in reg.catalog.audit_events()])
            assert SECRET not in events


def test_offline_pull_pinned_to_a_commit_uses_the_cache(
    hub: HubEmulator, lora: MadeAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = new_registry(tmp_path / "source")
    run(source, "push", str(lora.directory), "--eval", "accuracy=0.9")
    run(source, "hub", "push", "my-lora@1", "alice/my-lora")
    first = new_registry(tmp_path / "first")
    online = json.loads(run(first, "hub", "pull", "alice/my-lora@v1", "--json").stdout)
    commit = online["commit"]

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub.requests.clear()
    offline = new_registry(tmp_path / "offline")
    pulled = run(offline, "hub", "pull", f"alice/my-lora@{commit}", "--json")
    assert pulled.exit_code == 0, pulled.output
    document = json.loads(pulled.stdout)
    assert document["digest"] == online["digest"] and document["commit"] == commit
    assert document["version"]["evals"][0]["value"] == 0.9
    assert hub.requests == []  # not one request left the machine

    # A tag cannot be resolved offline: the message says to pin a commit.
    by_tag = run(new_registry(tmp_path / "by-tag"), "hub", "pull", "alice/my-lora@v1")
    assert by_tag.exit_code == 1 and "pin" in by_tag.stderr and "commit" in by_tag.stderr
    assert hub.requests == []


def test_progress_bars_follow_the_terminal(
    hub: HubEmulator, lora: MadeAdapter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub
    from huggingface_hub.utils.tqdm import are_progress_bars_disabled

    # What the client was told while it transferred the adapter files.
    shown: list[tuple[str, bool]] = []
    real_commit = huggingface_hub.HfApi.create_commit
    real_download = huggingface_hub.snapshot_download

    def create_commit(self: huggingface_hub.HfApi, *args: object, **kwargs: object) -> object:
        shown.append(("upload", not are_progress_bars_disabled()))
        return real_commit(self, *args, **kwargs)  # type: ignore[arg-type]

    def snapshot_download(*args: object, **kwargs: object) -> object:
        if len(kwargs.get("allow_patterns") or ()) > 1:  # the adapter files, not the manifest
            shown.append(("download", not are_progress_bars_disabled()))
        return real_download(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(huggingface_hub.HfApi, "create_commit", create_commit)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    before = are_progress_bars_disabled()

    # CliRunner's stderr is not a terminal: no bars.
    home = new_registry(tmp_path / "reg")
    run(home, "push", str(lora.directory))
    assert run(home, "hub", "push", "my-lora@1", "alice/my-lora").exit_code == 0
    assert run(new_registry(tmp_path / "other"), "hub", "pull", "alice/my-lora").exit_code == 0
    assert shown == [("upload", False), ("download", False)]

    # On a terminal (or when asked), the client's bars are on for the transfers only.
    shown.clear()
    with Registry.open(tmp_path / "reg") as reg:
        reg.hub.push("my-lora@1", "alice/my-lora", progress_bars=True)
    with Registry.open(tmp_path / "third", create=True) as reg:
        reg.hub.pull("alice/my-lora", progress_bars=True)
    assert shown == [("upload", True), ("download", True)]
    assert are_progress_bars_disabled() == before


def test_the_tour_in_the_docs_runs(hub: HubEmulator, lora: MadeAdapter, tmp_path: Path) -> None:
    import re
    import shlex

    doc = (Path(__file__).resolve().parent.parent / "docs" / "hub.md").read_text()
    tour = re.findall(r"```bash\n(.*?)```", doc, flags=re.S)[0]
    commands = [shlex.split(line) for line in tour.splitlines() if line.startswith("adapters ")]
    assert len(commands) >= 4
    hub.store.orgs["alice"] = {"acme"}  # the docs push to the acme organisation
    home = new_registry(tmp_path / "reg")
    for command in commands:
        args = [str(lora.directory) if a == "out/my-lora" else a for a in command[1:]]
        result = run(home, *args)
        assert result.exit_code == 0, f"{shlex.join(command)}: {result.output}"
    assert hub.repo("acme/my-lora").private
