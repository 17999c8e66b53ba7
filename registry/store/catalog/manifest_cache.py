"""Manifests parsed from catalog rows, kept by their exact text.

A manifest never changes once recorded, and listing 1,000 versions after any write would
otherwise parse 1,000 of them again. The key is the row's text itself, not its digest
column, so a row edited behind the catalog's back is parsed afresh (and ``verify`` sees
what is stored), never answered from memory. Each caller gets its own copy of the
mutable parts (``config``, ``requires``, lineage ``parameters``): a caller that edits
what it was given cannot change what the next one reads.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

from registry.store.manifest import Manifest

_CAPACITY = 8192  # a few thousand manifests of a few kB each
# Configs may be up to 16 MiB: the texts kept are bounded in bytes too, and one larger
# than _LARGEST (no real manifest is) is parsed each time rather than kept.
_BUDGET = 64 * 1024 * 1024
_LARGEST = 1024 * 1024
_kept: dict[str | bytes, Manifest] = {}
_kept_bytes = 0
_lock = threading.Lock()


def parsed_manifest(text: str | bytes) -> Manifest:
    """``Manifest.from_json(text)``, parsed once per distinct text."""
    global _kept_bytes
    kept = _kept.get(text)
    if kept is None:
        kept = Manifest.from_json(text)
        if len(text) > _LARGEST:
            return kept  # not kept, so not shared: no copy needed
        with _lock:
            if len(_kept) >= _CAPACITY or _kept_bytes + len(text) > _BUDGET:
                _kept.clear()  # simpler than LRU; a scan past the capacity re-parses
                _kept_bytes = 0
            _kept[text] = kept
            _kept_bytes += len(text)
    return _copy(kept)


def _copy(manifest: Manifest) -> Manifest:
    lineage = manifest.lineage
    if lineage is not None and lineage.parameters:
        lineage = dataclasses.replace(lineage, parameters=_json_copy(lineage.parameters))
    # The constructor, not dataclasses.replace: this runs once per version listed.
    return Manifest(
        method=manifest.method,
        source_format=manifest.source_format,
        config=_json_copy(manifest.config),
        files=manifest.files,  # tuples of frozen entries
        base_model=manifest.base_model,
        training_data=manifest.training_data,
        lineage=lineage,
        requires=dict(manifest.requires),
        requires_key=manifest.requires_key,
        analysis=manifest.analysis,
    )


def _json_copy(value: Any) -> Any:
    """A deep copy of parsed JSON (dicts, lists, scalars), faster than ``copy.deepcopy``."""
    kind = type(value)
    if kind is dict:
        return {key: _json_copy(item) for key, item in value.items()}
    if kind is list:
        return [_json_copy(item) for item in value]
    return value
