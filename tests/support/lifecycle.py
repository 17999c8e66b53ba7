"""Helpers for the lifecycle, gc and query tests: the CLI in-process, and versions inserted
straight into the catalog (with lineage, fingerprints, evals). Quick real LoRA directories
come from ``support.handmade.write_lora``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from click.testing import CliRunner, Result

from registry.cli import main
from registry.store.catalog.catalog import Catalog, NewVersion
from registry.store.manifest import (
    BaseModelRef,
    FileEntry,
    Lineage,
    Manifest,
    ParentRef,
    TrainingDataRef,
)
from registry.store.refs import next_version
from registry.store.results import AdapterVersion, TrainingDataInfo
from registry.store.scores import NewScore

ACTOR = "tester@ci"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def one_line_error(result: Result) -> bool:
    return result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1


def manifest(
    seed: int | str,
    *,
    method: str = "lora",
    base: str | None = "tiny/llama",
    revision: str | None = None,
    fingerprint: str | None = None,
    parents: Sequence[AdapterVersion] = (),
    operation: str = "linear",
    weights: Sequence[float | None] = (),
    data: Sequence[str] = (),
) -> Manifest:
    """A manifest whose files need not exist in the blob store (catalog-only tests)."""
    tag = hashlib.sha256(str(seed).encode()).hexdigest()
    lineage = None
    if parents:
        lineage = Lineage(
            operation=operation,
            parents=tuple(
                ParentRef(p.name, p.version, p.digest, weights[i] if weights else None)
                for i, p in enumerate(parents)
            ),
        )
    return Manifest(
        method=method,
        source_format="peft",
        config={"r": 8, "seed": str(seed)},
        files=(
            FileEntry("adapter_config.json", tag, 10, "config"),
            FileEntry("adapter_model.safetensors", tag[::-1], 100, "weights"),
        ),
        base_model=BaseModelRef(base, revision, fingerprint),
        training_data=tuple(TrainingDataRef(d, "given") for d in data),
        lineage=lineage,
    )


def insert(
    catalog: Catalog,
    name: str,
    made: Manifest,
    *,
    version: str | None = None,
    evals: Sequence[tuple[str, float, str]] = (),
    tags: dict[str, str] | None = None,
    alias: str | None = None,
) -> AdapterVersion:
    outcome = catalog.insert_version(
        NewVersion(
            name=name,
            version=version,
            manifest=made,
            actor=ACTOR,
            training_data=[
                TrainingDataInfo(t.sha256, t.kind, "given", 0, 0) for t in made.training_data
            ],
            evals=[NewScore(metric, value, dataset) for metric, value, dataset in evals],
            tags=tags,
            alias=alias,
        ),
        next_version,
    )
    return catalog.get_by_id(outcome.row_id)
