"""Pushing a Trainer checkpoint-N directory: named after the run, step and logged eval
metrics recorded, bookkeeping files not stored (same weights, same digest), pickles unread."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support.handmade import write_lora
from support.lifecycle import one_line_error, run

from registry import Registry
from registry.errors import InvalidNameError


def _checkpoint(directory: Path, step: int, eval_loss: float) -> Path:
    write_lora(directory, 1)
    state = {
        "global_step": step,
        "log_history": [
            {"step": step - 10, "loss": 2.0},
            {"step": step, "eval_loss": eval_loss, "eval_accuracy": 0.5, "eval_runtime": 1.2},
        ],
    }
    (directory / "trainer_state.json").write_text(json.dumps(state))
    # Pickles a Trainer leaves: not valid pickle at all, so reading one would fail.
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth", "training_args.bin"):
        (directory / name).write_bytes(b"\x80not a pickle")
    return directory


def test_checkpoint_is_named_after_the_run_with_step_and_metrics(
    registry: Registry, tmp_path: Path
) -> None:
    first = registry.push(_checkpoint(tmp_path / "run-x" / "checkpoint-500", 500, 0.4))
    version = first.version
    assert version.name == "run-x" and first.created
    assert version.tags == {"step": "500"}
    trainer = {(e.metric, e.value) for e in version.evals if e.dataset == "trainer"}
    assert trainer == {("loss", 0.4), ("accuracy", 0.5)}
    assert [f.path for f in version.files] == ["adapter_config.json", "adapter_model.safetensors"]
    assert any("trainer_state.json" in note for note in first.skipped)
    # The same weights saved at a later step: no new version.
    later = tmp_path / "run-x" / "checkpoint-600"
    shutil.copytree(tmp_path / "run-x" / "checkpoint-500", later)
    (later / "trainer_state.json").write_text(json.dumps({"global_step": 600}))
    again = registry.push(later)
    assert not again.created and again.version.digest == version.digest


def test_checkpoint_of_a_run_with_an_invalid_name_asks_for_name(
    registry: Registry, tmp_path: Path
) -> None:
    directory = _checkpoint(tmp_path / "Run X" / "checkpoint-5", 5, 1.0)
    with pytest.raises(InvalidNameError, match=r"'Run X'.*--name"):
        registry.push(directory)
    result = run("push", str(directory))
    assert result.exit_code == 1 and one_line_error(result) and "--name" in result.stderr
    ok = run("push", str(directory), "--name", "run-x")
    assert ok.exit_code == 0 and ok.stdout.startswith("run-x@1 ")
