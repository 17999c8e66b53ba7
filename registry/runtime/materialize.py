"""Materialising versions for servers that read adapter directories, under the load policy.

The cache and the layout are ``registry.store.materialize``; this adds what loading
adds: policy.json's ``load.require_signature`` holds for a server reading the files
just as for ``load`` (a materialised directory is an adapter about to be served).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from registry.store.materialize import (
    CACHE_DIRNAME,
    Materialized,
    folder_name,
    lay_out,
    materialize,
)
from registry.store.results import AdapterVersion
from registry.store.store import Store


def cache_root(store: Store) -> Path:
    return store.root / "cache" / CACHE_DIRNAME


def materialize_version(store: Store, version: AdapterVersion, *, rehash: bool = False) -> Path:
    _check_load_policy(store, version)
    return materialize(version, store.blobs, cache_root(store), rehash=rehash)


def materialize_versions(
    store: Store,
    versions: Sequence[tuple[str | None, AdapterVersion]],
    into: Path,
    *,
    copy: bool = False,
    rehash: bool = False,
) -> list[Materialized]:
    """Each ``(folder or None, version)`` materialised and laid out in ``into``; every
    version is checked and cached before the first folder changes."""
    entries = []
    for folder, version in versions:
        cached = materialize_version(store, version, rehash=rehash)
        entries.append((folder or folder_name(version.name), version, cached))
    return lay_out(entries, into, copy=copy)


def _check_load_policy(store: Store, version: AdapterVersion) -> None:
    from registry.lifecycle.policy import load_policy
    from registry.security.signing import require_trusted_signature

    if load_policy(store.root).load_requires_signature:
        require_trusted_signature(
            store, version, "to serve it (policy.json: load.require_signature)"
        )
