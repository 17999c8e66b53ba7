"""`adapters demo`, the main job of the README, runs end to end in a fresh registry."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import main


def test_demo_runs_every_step(tmp_path: Path, hermetic_env: Path) -> None:
    Registry.open(hermetic_env, create=True).close()  # --registry names an existing registry
    result = CliRunner().invoke(
        main, ["demo", "--registry", str(hermetic_env), "--workdir", str(tmp_path / "work")]
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    for step in range(1, 10):
        assert f"\n{step}. " in out
    assert "tensors byte-identical to the pushed ones: True" in out
    assert "against base-instruct: refused, base weights:" in out
    assert "refused: " in out and "@prod -> 1" in out
    with Registry.open(hermetic_env) as reg:
        refs = {v.ref for v in reg.list()}
        assert {"demo/sql-lora@1", "demo/sql-lora@2", "demo/tone-ia3@1"} <= refs
        assert "demo/sql-lora-combined@1" in refs
        assert all(reg.verify(ref).ok for ref in refs)
        assert reg.get("demo/sql-lora-combined@prod").ref == "demo/sql-lora-combined@1"


def test_demo_without_registry_uses_a_temporary_one_and_removes_it(
    tmp_path: Path, hermetic_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    Registry.open(hermetic_env, create=True).close()
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "tensors byte-identical to the pushed ones: True" in result.stdout
    assert f"Registry: {scratch}" in result.stdout
    assert "temporary registry and files were removed" in result.stdout
    assert list(scratch.iterdir()) == []  # nothing left behind
    with Registry.open(hermetic_env) as reg:
        assert reg.list() == []  # the configured registry was not touched
