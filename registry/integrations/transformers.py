"""``RegistryCallback``: a transformers ``TrainerCallback`` that pushes the adapter as it trains.

Works with ``Trainer`` and the trainers built on it (TRL's ``SFTTrainer``, ...) when
the model is a PEFT model. At each save, at the best checkpoint, and/or at the end
(``push_on``) it saves the adapter with ``save_pretrained`` and pushes it with:

- tags ``step``, ``epoch`` and ``event`` (save / best / end);
- the latest logged eval metrics (``eval_accuracy`` -> ``accuracy``; runtime and
  throughput entries left out) as evals, on ``eval_dataset`` if named;
- the training data digest: ``data`` files or directories, and the fingerprint of a
  ``datasets.Dataset`` (given, or the trainer's training set) as ``sha256`` of
  ``"datasets-fingerprint:<fingerprint>"`` with the fingerprint itself in a tag;
- the base fingerprint read from the live model, so later loads onto other weights
  are refused.

With ``alias`` each pushed version is then promoted through the usual gates
(policy.json and ``alias_requires``); a version that misses them stays pushed, and
the alias stays where it was. Nothing here raises into the training loop: a failure
is logged one line (logger ``registry.integrations.transformers``) and kept in
``failures``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from registry import Registry
from registry.errors import ArgumentError
from registry.store.results import PushResult

EVENTS = ("save", "best", "end")
_NOT_METRICS = ("runtime", "samples_per_second", "steps_per_second", "epoch")
_EMBEDDING_NAMES = ("embed_tokens", "lm_head", "wte", "word_embeddings", "embed_in", "embed_out")

logger = logging.getLogger(__name__)


class RegistryCallback(TrainerCallback):
    """``Trainer(..., callbacks=[RegistryCallback("support-bot", data=["train.jsonl"])])``."""

    def __init__(
        self,
        name: str,
        *,
        registry: Registry | str | Path | None = None,
        push_on: Sequence[str] = ("save", "end"),
        base: str | None = None,
        data: Iterable[str | Path] = (),
        dataset: Any = None,
        eval_dataset: str = "",
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
        alias_requires: Sequence[str] = (),
    ) -> None:
        unknown = sorted(set(push_on) - set(EVENTS))
        if unknown or not push_on:
            raise ArgumentError(
                f"push_on takes some of {', '.join(EVENTS)}, not {unknown or 'nothing'}"
            )
        self.name = name
        self.push_on = tuple(push_on)
        self.base = base
        self.data = tuple(Path(p) for p in data)
        self.dataset = dataset
        self.eval_dataset = eval_dataset
        self.tags = dict(tags or {})
        self.alias = alias
        self.alias_requires = tuple(alias_requires)
        self.pushed: list[PushResult] = []
        self.failures: list[str] = []
        self._registry = registry
        self._pushed_steps: set[int] = set()

    # -- trainer events ---------------------------------------------------------------

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.dataset is None:
            loader = kwargs.get("train_dataloader")
            self.dataset = getattr(loader, "dataset", None)

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if "save" in self.push_on:
            self._push(kwargs.get("model"), state, "save")
        elif "best" in self.push_on and _is_best(args, state):
            self._push(kwargs.get("model"), state, "best")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if "end" in self.push_on and state.global_step not in self._pushed_steps:
            self._push(kwargs.get("model"), state, "end")

    # -- pushing ----------------------------------------------------------------------

    def _push(self, model: Any, state: Any, event: str) -> None:
        step = int(state.global_step)
        try:
            result = self._push_model(model, state, event)
        except Exception as exc:  # never let a push end the training run
            message = f"step {step}: pushing {self.name} failed: {_one_line(exc)}"
            logger.error("%s", message)
            self.failures.append(message)
            return
        self.pushed.append(result)
        self._pushed_steps.add(step)
        logger.info("step %d: pushed %s", step, result.version.ref)
        if self.alias:
            self._move_alias(result, step)

    def _push_model(self, model: Any, state: Any, event: str) -> PushResult:
        if model is None or not hasattr(model, "peft_config"):
            raise ArgumentError("the trained model is not a PEFT model; nothing to push")
        tags = {**self.tags, "step": str(state.global_step), "event": event}
        if state.epoch is not None:
            tags["epoch"] = f"{float(state.epoch):g}"
        data_hashes = []
        fingerprint = getattr(self.dataset, "_fingerprint", None)
        if isinstance(fingerprint, str) and fingerprint:
            tags["dataset_fingerprint"] = fingerprint
            text = f"datasets-fingerprint:{fingerprint}".encode()
            data_hashes.append("sha256:" + hashlib.sha256(text).hexdigest())
        with tempfile.TemporaryDirectory(prefix="registry-callback-") as work:
            directory = Path(work) / "adapter"
            model.save_pretrained(directory, save_embedding_layers=_targets_embeddings(model))
            with self._open() as registry:
                result: PushResult = registry.push(
                    directory,
                    name=self.name,
                    base=self.base,
                    data=self.data,
                    data_hashes=data_hashes,
                    evals=latest_eval_metrics(state.log_history),
                    eval_dataset=self.eval_dataset,
                    tags=tags,
                    base_module=model,
                )
                return result

    def _move_alias(self, result: PushResult, step: int) -> None:
        assert self.alias is not None
        try:
            with self._open() as registry:
                registry.set_alias(result.version.ref, self.alias, requires=self.alias_requires)
        except Exception as exc:
            message = (
                f"step {step}: {result.version.ref} pushed, alias {self.alias} not moved: "
                f"{_one_line(exc)}"
            )
            logger.warning("%s", message)
            self.failures.append(message)

    @contextlib.contextmanager
    def _open(self) -> Any:
        if isinstance(self._registry, Registry):
            yield self._registry
            return
        with Registry.open(self._registry) as registry:
            yield registry


def latest_eval_metrics(log_history: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The most recent evaluation's metrics, ``eval_`` stripped, finite numbers only."""
    for entry in reversed(log_history):
        found = {
            key[len("eval_") :]: float(value)
            for key, value in entry.items()
            if key.startswith("eval_")
            and not key.endswith(_NOT_METRICS)
            and isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
        }
        if found:
            return found
    return {}


def _is_best(args: Any, state: Any) -> bool:
    # Set by the evaluation just before this save when it improved metric_for_best_model.
    best_step = getattr(state, "best_global_step", None)
    if best_step is not None:
        return bool(best_step == state.global_step)
    best = getattr(state, "best_model_checkpoint", None)
    return best is not None and Path(best).name == f"checkpoint-{state.global_step}"


def _targets_embeddings(model: Any) -> bool:
    # PEFT's "auto" may ask the Hub about the base; decide from the targets instead.
    config = next(iter(model.peft_config.values()), None)
    targets = getattr(config, "target_modules", None) or ()
    if isinstance(targets, str):
        return any(name in targets for name in _EMBEDDING_NAMES)
    return any(str(t).split(".")[-1] in _EMBEDDING_NAMES for t in targets)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
