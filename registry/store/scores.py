"""``NewScore``: one eval score on its way into the catalog (push, eval, Hub pull)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NewScore:
    """A score to record; ``recorded_at`` and the actor are added when it is written."""

    metric: str
    value: float
    dataset: str = ""
    split: str = ""
    notes: str = ""
