"""Hostile Hub servers: a download that never ends or trickles is stopped within its
bounds and leaves nothing behind; a server echoing the token never gets it printed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.hub_emulator import HubEmulator
from support.peft_adapters import MadeAdapter
from test_hub_failures import assert_nothing_imported, fresh

from registry import Registry
from registry.cli import main
from registry.errors import ArgumentError, HubError

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")
WEIGHTS = "adapter_model.safetensors"


@pytest.fixture
def pushed(hub: HubEmulator, lora: MadeAdapter, tmp_path: Path) -> Registry:
    source = fresh(tmp_path, "source")
    source.push(lora.directory)
    source.hub.push("my-lora@1", "alice/my-lora")
    return source


def partial_files(tmp_path: Path) -> list[Path]:
    return list((tmp_path / "hf").rglob("*.incomplete"))


def test_an_endless_download_stops_at_the_listed_size(
    hub: HubEmulator, pushed: Registry, tmp_path: Path
) -> None:
    target = fresh(tmp_path, "target")
    size = len(hub.file_bytes("alice/my-lora", WEIGHTS))
    hub.faults.endless_download(WEIGHTS)
    began = time.monotonic()
    with pytest.raises(HubError, match=rf"more than the {size} bytes the Hub lists") as caught:
        target.hub.pull("alice/my-lora@v1")
    assert time.monotonic() - began < 30
    assert "\n" not in str(caught.value)
    assert partial_files(tmp_path) == []
    assert_nothing_imported(target)


def test_a_trickling_download_is_given_up(
    hub: HubEmulator, pushed: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTERS_HUB_STALL_SECONDS", "1")
    monkeypatch.setenv("ADAPTERS_HUB_MIN_RATE", "1000")
    target = fresh(tmp_path, "target")
    hub.faults.trickle_download(WEIGHTS, interval=0.3)
    began = time.monotonic()
    with pytest.raises(HubError, match=r"below the 1000 B/s minimum \(ADAPTERS_HUB_MIN_RATE\)"):
        target.hub.pull("alice/my-lora@v1")
    assert time.monotonic() - began < 30
    assert partial_files(tmp_path) == []
    assert_nothing_imported(target)


def test_the_overall_deadline_holds(
    hub: HubEmulator, pushed: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTERS_HUB_DEADLINE", "2")
    monkeypatch.setenv("ADAPTERS_HUB_MIN_RATE", "0")  # only the deadline applies
    target = fresh(tmp_path, "target")
    hub.faults.trickle_download(WEIGHTS, interval=0.2)
    began = time.monotonic()
    with pytest.raises(HubError, match=r"longer than 2 s \(ADAPTERS_HUB_DEADLINE\)"):
        target.hub.pull("alice/my-lora@v1")
    assert time.monotonic() - began < 30
    assert partial_files(tmp_path) == []
    assert_nothing_imported(target)


def test_limits_must_be_numbers(
    hub: HubEmulator, pushed: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADAPTERS_HUB_DEADLINE", "soon")
    with pytest.raises(ArgumentError, match="ADAPTERS_HUB_DEADLINE='soon'"):
        fresh(tmp_path, "target").hub.pull("alice/my-lora@v1")


def test_an_ordinary_pull_is_within_the_limits(
    hub: HubEmulator, pushed: Registry, tmp_path: Path
) -> None:
    assert fresh(tmp_path, "target").hub.pull("alice/my-lora@v1").ref == "my-lora@1"


def test_a_server_echoing_the_token_never_gets_it_printed(
    hub: HubEmulator, pushed: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "hf_emulator_alice_token"
    monkeypatch.setenv("HF_TOKEN", token)
    hub.faults.fail("GET", r"^/api/models/alice/my-lora", 500, times=None, echo_headers=True)
    target = fresh(tmp_path, "target")
    with pytest.raises(HubError) as caught:
        target.hub.pull("alice/my-lora@v1")
    assert "request headers" in str(caught.value) and token not in str(caught.value)
    assert "Bearer <redacted>" in str(caught.value)
    result = CliRunner().invoke(
        main, ["--registry", str(tmp_path / "target"), "hub", "pull", "alice/my-lora@v1"]
    )
    assert result.exit_code == 1 and token not in result.output
    assert "error: " in result.stderr
