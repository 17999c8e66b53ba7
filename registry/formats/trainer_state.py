"""Training outputs: a ``transformers.Trainer`` ``checkpoint-N`` directory.

``trainer_state.json`` is bookkeeping, not part of the adapter: it is not stored (so the
same weights saved at two steps have one digest), and what it says is returned as
annotations: the step (tag ``step``) and the ``eval_*`` metrics logged at that step
(evals with dataset ``trainer``). The pickled files next to it (optimizer.pt,
scheduler.pt, rng_state*.pth, training_args.bin, scaler.pt) are never read.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from registry.formats.config_file import parse_config

TRAINER_STATE = "trainer_state.json"
CHECKPOINT_DIR = re.compile(r"checkpoint-(\d+)")
TRAINER_DATASET = "trainer"


@dataclass(frozen=True)
class TrainerRecord:
    step: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # eval_loss -> 0.42 at that step


def checkpoint_step(directory: Path) -> int | None:
    """N for a directory named ``checkpoint-N``, else None."""
    found = CHECKPOINT_DIR.fullmatch(directory.absolute().name)
    return int(found.group(1)) if found else None


def read_trainer_state(directory: Path, state: Path | None = None) -> TrainerRecord:
    """The step and the eval metrics logged at it; empty when there is no usable state.
    ``state``: the trainer state file when it is kept elsewhere than in ``directory``
    (a server's staged upload; ``directory`` then names no checkpoint step)."""
    step = checkpoint_step(directory) if state is None else None
    path = directory / TRAINER_STATE if state is None else state
    if not path.is_file():
        return TrainerRecord(step)
    document, problems = parse_config(path.read_bytes(), TRAINER_STATE)
    if document is None or problems:
        return TrainerRecord(step)
    global_step = document.get("global_step")
    if isinstance(global_step, int) and not isinstance(global_step, bool):
        step = global_step
    metrics: dict[str, float] = {}
    history = document.get("log_history")
    for entry in history if isinstance(history, list) else []:
        if not isinstance(entry, dict) or entry.get("step") != step:
            continue
        for key, value in entry.items():
            if (
                key.startswith("eval_")
                and isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and not key.endswith(("_runtime", "_samples_per_second", "_steps_per_second"))
            ):
                metrics[key.removeprefix("eval_")] = float(value)
    return TrainerRecord(step, metrics)
