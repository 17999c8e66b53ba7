"""``FacadeCore``: what every part of the ``Registry`` facade stands on.

The facade is one class, ``registry.api.Registry``, assembled from parts by concept
(``lifecycle_methods``, ``operator_methods``) so that no module grows past a screenful
of concerns. Each part reaches the services through ``self.store`` and resolves
references with ``get``; none imports another part or the assembled class.
"""

from __future__ import annotations

from registry.store.blob_store import BlobBackend
from registry.store.catalog.catalog import Catalog
from registry.store.home import RegistryHome
from registry.store.refs import Ref
from registry.store.results import AdapterVersion
from registry.store.store import Store


class FacadeCore:
    """An open registry's store, and reference resolution."""

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def home(self) -> RegistryHome:
        return self.store.home

    @property
    def catalog(self) -> Catalog:
        return self.store.catalog

    @property
    def blobs(self) -> BlobBackend:
        return self.store.blobs

    def get(self, ref: str | Ref) -> AdapterVersion:
        """Resolve a reference (see ``registry.store.refs``) to one version.

        A yanked version resolves only when pinned exactly (or through an alias), and
        then with a ``YankedVersionWarning``.
        """
        return self.store.resolve(ref)
