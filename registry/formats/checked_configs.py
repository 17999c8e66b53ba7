"""Adapter configs already checked, kept by their bytes.

Teams push many adapters trained with one recipe, whose ``adapter_config.json`` is the
same byte for byte; its checks (JSON limits, normalisation, the schema, regexes) give the
same answer every time, and cost a third of reading a small adapter. A config that passed
them is kept with what they made of it (at most ``_CAPACITY`` configs of up to
``_LARGEST`` bytes, least recently used out first); one with any problem is not kept, so
every refusal is worded afresh. Each caller gets a copy of the config of its own.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from registry.bounded_lru import BoundedLru

_CAPACITY = 256
_LARGEST = 64 * 1024


@dataclass(frozen=True)
class CheckedConfig:
    """A config that passed its checks: the format it is, the method it declares, the
    normalised config, how deeply its tensors are analysed, and the bytes it is stored as."""

    source_format: str
    method: str
    config: dict[str, Any]
    analysis: str
    stored_bytes: bytes


_kept: BoundedLru[bytes, CheckedConfig] = BoundedLru(_CAPACITY)


def known_config(raw: bytes) -> CheckedConfig | None:
    """What the checks made of the config ``raw`` before, if it passed them."""
    kept = _kept.get(raw)
    if kept is None:
        return None
    return replace(kept, config=copy.deepcopy(kept.config))


def keep_config(raw: bytes, checked: CheckedConfig) -> None:
    if len(raw) > _LARGEST:
        return
    _kept.put(raw, replace(checked, config=copy.deepcopy(checked.config)))  # caller keeps its own
