"""Eval scores: appended to a version, never overwritten, each an audit event."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from registry.errors import ArgumentError
from registry.lifecycle import transactions as q
from registry.lifecycle.results import (
    EvalRecord,
)
from registry.store.actor import current_actor
from registry.store.catalog.catalog import Catalog
from registry.store.conditions import (
    validate_dataset,
    validate_metric,
    validate_notes,
    validate_score,
    validate_split,
)
from registry.store.refs import Ref
from registry.store.scores import NewScore

if TYPE_CHECKING:
    pass
from registry.lifecycle.selection import as_ref, row_id


def record_eval(
    catalog: Catalog,
    ref: str | Ref,
    scores: Mapping[str, float],
    *,
    dataset: str = "",
    split: str = "",
    notes: str = "",
) -> EvalRecord:
    """Append eval records (never overwriting earlier ones) in one transaction."""
    if not scores:
        raise ArgumentError("no eval scores given; pass METRIC=VALUE")
    checked = [
        NewScore(
            validate_metric(metric),
            validate_score(metric, value),
            validate_dataset(dataset),
            validate_split(split),
            validate_notes(notes),
        )
        for metric, value in scores.items()
    ]
    version = catalog.resolve(as_ref(ref))
    added = q.append_evals(catalog.engine, row_id(catalog, version), checked, current_actor())
    return EvalRecord(ref=version.ref, digest=version.digest, scores=tuple(added))
