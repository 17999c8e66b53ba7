"""The versions of a list as sent, each kept by the catalog record it is made of.

A version's entry in a list (its JSON, exactly as ``JSONResponse`` encodes
``codec.encode(version)``) depends on nothing but its record: its ``adapter_versions``
row and its eval, alias, tag and training-data rows (``version_rows.Record``). The
entry is kept under that record itself, so it is served only when the rows read by
this very request are the ones it was made from. A write to one version (an eval, an
alias moved on or off it, a tag, a description, yank, unyank) changes that version's
record alone, so only its entry is made again; a version removed is no longer read.
Every list still reads every record, so a write by any process (another server worker,
the CLI on the same catalog) shows on the next list, with nothing to invalidate.

Reading the records of 1,000 versions costs a few ms; building, encoding and
serialising them cost several times that, and that is what is kept.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from registry.remote.codec import encode
from registry.store.catalog.version_rows import Record, build
from registry.store.results import EvalScore

# Entries kept at most, and their bytes (twice the body: the record that keys it holds
# the manifest text, about as long). Past either, everything kept is dropped (simpler
# than LRU; a list longer than this re-encodes what it does not find).
_CAPACITY = 32768
_BUDGET = 64 * 1024 * 1024


class Entry(NamedTuple):
    """A version as sent in a list, with what its position in the list is made of."""

    name: str
    version: str
    created_at: datetime
    evals: tuple[EvalScore, ...]
    body: bytes  # the version's JSON


def json_bytes(payload: Any) -> bytes:
    """``payload`` as ``JSONResponse`` sends it."""
    return json.dumps(
        payload, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


class VersionEntries:
    def __init__(self, capacity: int = _CAPACITY, budget: int = _BUDGET) -> None:
        self.capacity = capacity
        self.budget = budget
        self._kept: dict[Any, Entry] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def entries(self, records: Sequence[Record]) -> list[Entry]:
        """The entry of each record, in order: kept, or made (and kept) now."""
        kept = self._kept
        found: list[Entry] = []
        for record in records:
            key = _key(record)
            entry = kept.get(key)
            if entry is None:
                entry = self._make(key, record)
            found.append(entry)
        return found

    def _make(self, key: Any, record: Record) -> Entry:
        version = build(record)
        entry = Entry(version.name, version.version, version.created_at, version.evals,
                      json_bytes(encode(version)))  # fmt: skip
        size = 2 * len(entry.body)
        with self._lock:
            if len(self._kept) >= self.capacity or self._bytes + size > self.budget:
                self._kept.clear()
                self._bytes = 0
            self._kept[key] = entry
            self._bytes += size
        return entry

    def __len__(self) -> int:
        return len(self._kept)


def _key(record: Record) -> Any:
    """The record, as a key under which equal means sent alike. Row values equal in
    Python are sent alike, but for one pair: an eval's 0.0 and -0.0 (NaN is never
    equal, so never found). Evals are the only floats: their values' text joins the key."""
    evals = record[1]
    if not evals:
        return record
    return record, tuple(repr(row[1]) for row in evals)
