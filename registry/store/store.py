"""``Store``: what every service works on, one catalog plus one blob store in one home.

Services (push, lifecycle, loading, operators, Hub sync) take a ``Store`` (or the
narrower collaborators they need), never the ``Registry`` facade: only the facade
composes them, and nothing calls back up into it. A reference is resolved once, at
the facade or at the service's entry, and the resolved ``AdapterVersion`` is what
travels further down.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from registry.errors import CatalogMissingError
from registry.store.blob_config import open_blob_store
from registry.store.blob_store import BlobBackend
from registry.store.catalog.catalog import Catalog
from registry.store.home import RegistryHome
from registry.store.refs import Ref, parse_ref, warn_if_yanked
from registry.store.results import AdapterVersion


@dataclass
class Store:
    """An open registry's storage: its home on disk, its catalog and its blobs."""

    home: RegistryHome
    catalog: Catalog
    blobs: BlobBackend

    @classmethod
    def open(
        cls,
        home: RegistryHome,
        database_url: str | None = None,
        *,
        create: bool = False,
        new_catalog: bool = False,
    ) -> Store:
        """Open the home's catalog. ``create`` makes one where there is none, but never
        over blobs without ``new_catalog``: a home that holds blobs and no catalog lost
        its catalog, and an empty one would make every blob look unreferenced."""
        url = database_url or home.database_url()
        blobs = open_blob_store(home)
        if create and not new_catalog and blobs.holds_any():
            try:
                return cls(home, Catalog(url), blobs)
            except CatalogMissingError as exc:
                raise CatalogMissingError(
                    f"{str(exc).split(';')[0]}, yet {home.objects_dir} holds blobs; restore "
                    "the catalog from a backup (`adapters doctor` explains), or pass "
                    "--new-catalog to start an empty one over these blobs"
                ) from None
        return cls(home, Catalog(url, create=create or home.new), blobs)

    @property
    def root(self) -> Path:
        return self.home.root

    @property
    def tmp_dir(self) -> Path:
        """Staging space on the blob store's file system (renames into it are atomic)."""
        return self.home.tmp_dir

    def resolve(self, ref: str | Ref) -> AdapterVersion:
        """One version for a reference; a yanked one (pinned exactly) with a warning."""
        version = self.catalog.resolve(parse_ref(ref) if isinstance(ref, str) else ref)
        warn_if_yanked(version, stacklevel=3)
        return version

    def close(self) -> None:
        self.catalog.close()
