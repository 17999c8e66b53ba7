"""`adapters demo`, the main job of the README, runs end to end in a fresh registry."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from registry import Registry
from registry.cli import main


def test_demo_runs_every_step(tmp_path: Path, hermetic_env: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path / "work")])
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
