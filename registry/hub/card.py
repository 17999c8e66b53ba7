"""The model card (README.md) a push puts on the Hub, and what a pull reads from a card.

The card's YAML is built with huggingface_hub's ``ModelCardData``: ``base_model``,
``base_model_relation: adapter``, ``library_name: peft``, ``tags``, ``datasets`` (from the
version's ``datasets`` tag, comma separated Hub dataset ids) and the eval scores as
``model-index`` (``EvalResult``). The text is deterministic, so an unchanged version
produces the same card and a re-push makes no commit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import InvalidNameError
from registry.hub.remote_manifest import CARD_COPY_PATH, CARD_PATH, MANIFEST_PATH
from registry.store.conditions import validate_dataset, validate_metric, validate_split
from registry.store.results import AdapterVersion
from registry.store.scores import NewScore

# PEFT task types -> (Hub pipeline tag, transformers auto class for the usage snippet).
_TASKS: dict[str, tuple[str, str]] = {
    "CAUSAL_LM": ("text-generation", "AutoModelForCausalLM"),
    "SEQ_CLS": ("text-classification", "AutoModelForSequenceClassification"),
    "SEQ_2_SEQ_LM": ("text2text-generation", "AutoModelForSeq2SeqLM"),
    "TOKEN_CLS": ("token-classification", "AutoModelForTokenClassification"),
    "QUESTION_ANS": ("question-answering", "AutoModelForQuestionAnswering"),
    "FEATURE_EXTRACTION": ("feature-extraction", "AutoModel"),
}
_TAG_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_.:")


# The Hub's library_name per stored format.
_LIBRARIES = {"peft": "peft", "adapterhub": "adapter-transformers", "diffusers": "diffusers",
              "kohya": "diffusers"}  # fmt: skip

def build_card(version: AdapterVersion, repo_id: str, tag: str) -> str:
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    manifest = version.manifest
    task, auto_class = _TASKS.get(str(manifest.config.get("task_type")), ("other", "AutoModel"))
    scores = version.latest_evals()
    base_model = _hub_model_id(manifest.base_model.name)
    data = ModelCardData(
        base_model=base_model,
        library_name=_LIBRARIES.get(manifest.source_format, "peft"),
        tags=_tags(version),
        datasets=_datasets(version) or None,
        pipeline_tag=task if task != "other" else None,
        model_name=version.name if scores else None,
        eval_results=[
            EvalResult(
                task_type=task,
                dataset_type=s.dataset or "custom",
                dataset_name=s.dataset or "custom",
                dataset_split=s.split or None,
                metric_type=s.metric,
                metric_value=s.value,
            )
            for s in scores
        ]
        or None,
        base_model_relation="adapter" if base_model else None,
        adapter_registry={
            "name": version.name,
            "version": version.version,
            "digest": version.digest,
            "manifest": MANIFEST_PATH,
        },
    )
    body = _body(version, repo_id, tag, auto_class)
    # Parsing the text back checks that the metadata block is valid YAML the Hub accepts.
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}"))


def _hub_model_id(name: str | None) -> str | None:
    """``name`` when it can be a Hub model id; a local name or path stays off the card's
    metadata (the Hub checks ``base_model``), and is still named in its text."""
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]

    if not name or name.count("/") > 1 or name.startswith((".", "/", "~")):
        return None
    try:
        validate_repo_id(name)
    except HFValidationError:
        return None
    return name


def _tags(version: AdapterVersion) -> list[str]:
    tags = ["adapter-registry", version.method]
    for key, value in sorted(version.tags.items()):
        text = f"{key}:{value}".lower()
        if key != "datasets" and set(text) <= _TAG_CHARS:
            tags.append(text)
    return tags


def _datasets(version: AdapterVersion) -> list[str]:
    return [d.strip() for d in version.tags.get("datasets", "").split(",") if d.strip()]


def _body(version: AdapterVersion, repo_id: str, tag: str, auto_class: str) -> str:
    manifest = version.manifest
    base = manifest.base_model
    base_text = f"{base.name}@{base.revision}" if base.revision else str(base.name)
    lines = [
        f"# {version.name} {version.version}",
        "",
        f"A {version.method} adapter for `{base_text}`, published by adapter-registry.",
        "",
        f"- digest: `{version.digest}`",
        f"- base model: `{base_text}`"
        + (f" (weights fingerprint `{base.fingerprint}`)" if base.fingerprint else ""),
        "- files: " + ", ".join(f"`{p}`" for p in sorted(f.path for f in manifest.files)),
    ]
    if manifest.training_data:
        digests = ", ".join(f"`sha256:{t.sha256}`" for t in manifest.training_data)
        lines.append(f"- training data: {digests}")
    if manifest.lineage is not None:
        parents = ", ".join(f"{p.name}@{p.version}" for p in manifest.lineage.parents)
        lines.append(f"- made by `{manifest.lineage.operation}` of {parents}")
    scores = version.latest_evals()
    if scores:
        lines += [
            "",
            "## Evaluation",
            "",
            "| metric | value | dataset | split |",
            "|---|---|---|---|",
        ]
        lines += [f"| {s.metric} | {s.value:g} | {s.dataset} | {s.split} |" for s in scores]
    lines += [
        "",
        "## Use it",
        "",
        "```python",
        f"from transformers import {auto_class}",
        "from peft import PeftModel",
        "",
        f'base = {auto_class}.from_pretrained("{base.name}")',
        f'model = PeftModel.from_pretrained(base, "{repo_id}", revision="{tag}")',
        "```",
        "",
        "or, into an adapter registry, checked file by file against the digest:",
        "",
        "```bash",
        f"adapters hub pull {repo_id}@{tag}",
        "```",
        "",
        f"`{MANIFEST_PATH}` is the registry's record of this version.",
    ]
    if any(f.path == CARD_PATH for f in manifest.files):
        lines.append(f"The card this version was stored with is kept at `{CARD_COPY_PATH}`.")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class CardFacts:
    """What a pull of a plain PEFT repo takes from its card."""

    base_model: str | None
    evals: tuple[NewScore, ...]
    skipped: tuple[str, ...]  # "<what>: <why it was not imported>"


def read_card(path: Path) -> CardFacts:
    from huggingface_hub import ModelCard

    try:
        card = ModelCard.load(path, ignore_metadata_errors=True)
    except Exception as exc:  # a card is optional: an unreadable one costs its metadata only
        return CardFacts(None, (), (f"{CARD_PATH}: metadata not read ({type(exc).__name__})",))
    data = card.data
    base: Any = data.get("base_model")
    if isinstance(base, list):
        base = next((b for b in base if isinstance(b, str)), None)
    evals = []
    skipped = []
    for result in data.get("eval_results") or []:
        record = (
            str(result.metric_type),
            result.metric_value,
            str(result.dataset_name or ""),
            str(result.dataset_split or ""),
            "imported from the model card",
        )
        problem = _eval_problem(*record[:4])
        if problem is None:
            evals.append(NewScore(record[0], float(record[1]), record[2], record[3], record[4]))
        else:
            skipped.append(f"{CARD_PATH}: eval {record[0]!r} not imported: {problem}")
    return CardFacts(base if isinstance(base, str) and base else None, tuple(evals), tuple(skipped))


def _eval_problem(metric: str, value: Any, dataset: str, split: str) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"value {value!r} is not a finite number"
    try:
        validate_metric(metric)
        validate_dataset(dataset)
        validate_split(split)
    except InvalidNameError as exc:
        return str(exc)
    return None
