"""RegistryCallback in a real transformers ``Trainer`` run on a tiny Llama with LoRA."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import peft
import pytest
import torch
from support.models import VOCAB_SIZE, base_model, save_base
from support.peft_adapters import lora_config
from transformers import Trainer, TrainingArguments

from registry import Registry
from registry.errors import ArgumentError
from registry.integrations.transformers import RegistryCallback
from registry.store.hashing import data_digest


class TokenRows(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __init__(self, rows: list[list[int]], fingerprint: str | None = None) -> None:
        self.rows = rows
        if fingerprint is not None:
            self._fingerprint = fingerprint  # what a datasets.Dataset carries

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        ids = torch.tensor(self.rows[index])
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}


def _data(tmp_path: Path) -> tuple[Path, list[list[int]]]:
    generator = torch.Generator().manual_seed(0)
    rows = torch.randint(0, VOCAB_SIZE, (8, 8), generator=generator).tolist()
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"input_ids": r}) + "\n" for r in rows))
    return path, rows


def _train(tmp_path: Path, callback: RegistryCallback, **overrides: object) -> Trainer:
    tmp_path.mkdir(parents=True, exist_ok=True)
    _, rows = _data(tmp_path)
    settings: dict[str, object] = {
        "output_dir": str(tmp_path / "out"),
        "max_steps": 4,
        "per_device_train_batch_size": 4,
        "learning_rate": 1e-2,
        "save_strategy": "steps",
        "save_steps": 2,
        "eval_strategy": "steps",
        "eval_steps": 2,
        "logging_steps": 1,
        "report_to": [],
        "use_cpu": True,
        "disable_tqdm": True,
    }
    settings.update(overrides)
    model = peft.get_peft_model(base_model("llama", 0), lora_config())
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**settings),  # type: ignore[arg-type]
        train_dataset=TokenRows(rows, fingerprint="0123456789abcdef"),
        eval_dataset=TokenRows(rows[:4]),
        callbacks=[callback],
    )
    trainer.train()
    return trainer


def test_pushes_at_each_save_with_step_evals_data_and_base(
    sqlite_registry: Registry, tmp_path: Path
) -> None:
    data_file, _ = _data(tmp_path)
    callback = RegistryCallback("tiny-sft", data=[data_file], eval_dataset="heldout", alias="dev")
    trainer = _train(tmp_path, callback)
    assert callback.failures == []
    versions = sqlite_registry.list(name="tiny-sft", sort="version")
    assert [v.tags["step"] for v in versions] == ["2", "4"]  # the end push found step 4 pushed
    base_fingerprint = sqlite_registry.add_base(save_base(base_model("llama", 0), tmp_path / "b"))
    for version in versions:
        assert version.base_model.fingerprint == base_fingerprint.content_digest
        assert version.tags["event"] == "save"
        assert version.tags["dataset_fingerprint"] == "0123456789abcdef"
        digests = {d.sha256 for d in version.manifest.training_data}
        assert data_digest(data_file).sha256 in digests and len(digests) == 2
        scores = {e.metric: e for e in sqlite_registry.get(version.ref).evals}
        assert "loss" in scores and scores["loss"].dataset == "heldout"
        assert "runtime" not in scores
    assert sqlite_registry.get("tiny-sft@dev").ref == versions[-1].ref
    # The pushed adapter is the trained one: the registry's loader gives PEFT's outputs.
    inputs = {"input_ids": torch.tensor([[1, 2, 3, 4]])}
    trainer.model.eval()
    with torch.no_grad():
        expected = trainer.model(**inputs).logits
    fresh = base_model("llama", 0)
    with sqlite_registry.load("tiny-sft@dev", fresh) as handle, torch.no_grad():
        assert torch.allclose(handle.model(**inputs).logits, expected, atol=1e-5)


def test_best_and_end(sqlite_registry: Registry, tmp_path: Path) -> None:
    callback = RegistryCallback("tiny-best", push_on=("best", "end"))
    trainer = _train(tmp_path / "a", callback, metric_for_best_model="eval_loss", max_steps=6)
    steps = [int(r.version.tags["step"]) for r in callback.pushed]
    # Pushed at the saves whose evaluation improved eval_loss; the end adds nothing when
    # the last save was already pushed as the best.
    assert steps and steps == sorted(set(steps)) and set(steps) <= {2, 4, 6}
    assert steps[-1] == trainer.state.best_global_step or steps[-1] == 6
    assert {r.version.tags["event"] for r in callback.pushed} <= {"best", "end"}
    assert callback.failures == []

    end_only = RegistryCallback("tiny-end", push_on=("end",))
    _train(tmp_path / "b", end_only, save_strategy="no", eval_strategy="no")
    assert [(r.version.tags["event"], r.version.tags["step"]) for r in end_only.pushed] == [
        ("end", "4")
    ]


def test_push_failures_are_logged_and_training_finishes(
    sqlite_registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    callback = RegistryCallback("Not A Valid Name", push_on=("end",))
    with caplog.at_level(logging.ERROR, logger="registry.integrations.transformers"):
        trainer = _train(tmp_path, callback)
    assert trainer.state.global_step == 4
    assert len(callback.failures) == 1 and "invalid" in callback.failures[0].lower()
    assert any("pushing Not A Valid Name failed" in r.message for r in caplog.records)
    assert sqlite_registry.list() == []


def test_unknown_push_event_is_refused() -> None:
    with pytest.raises(ArgumentError, match="push_on"):
        RegistryCallback("x", push_on=("epoch",))
