"""``CatalogReader``: the read-only part of the ``Registry`` surface (``get``, ``list``,
``list_pages``, ``count``, and a version's Hub links) over a local SQLite catalog, for
commands that only read. It opens no blob store and imports no SQLAlchemy, so ``adapters
list`` and ``show`` start in a fraction of the time; the results are those of the
``Registry`` methods (the same statements: ``store/catalog/listing.py``, ``resolve.py``).
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from registry.store.catalog.hub_link_rows import HubLink, read_links
from registry.store.catalog.sqlite_reader import SqliteReader
from registry.store.home import DATABASE_URL_ENV, RegistryHome, find_home
from registry.store.list_query import ListQuery
from registry.store.refs import Ref, parse_ref, warn_if_yanked
from registry.store.results import AdapterVersion


class CatalogReader:
    def __init__(self, home: RegistryHome, reader: SqliteReader) -> None:
        self.home = home
        self._reader = reader

    @classmethod
    def open(cls, path: str | Path | None = None) -> CatalogReader | None:
        """The reader of the registry ``Registry.open(path)`` would open, or None when that
        one is not a local SQLite catalog at this release's schema (open a ``Registry``)."""
        target = str(path) if path is not None else os.environ.get("ADAPTERS_URL", "")
        if "://" in target:
            return None
        url = os.environ.get(DATABASE_URL_ENV)
        catalog_file = _sqlite_file(url) if url else None
        if url and catalog_file is None:
            return None
        home = find_home(path)
        if home.new:
            return None
        reader = SqliteReader.open(catalog_file or home.sqlite_path)
        return cls(home, reader) if reader is not None else None

    def list(self, query: ListQuery | None = None, /, **fields: Any) -> list[AdapterVersion]:
        """As ``Registry.list``."""
        return self._reader.list_versions(ListQuery.of(query, fields).compile())

    def list_pages(
        self, query: ListQuery | None = None, /, **fields: Any
    ) -> Iterator[builtins.list[AdapterVersion]]:
        """As ``Registry.list_pages``."""
        return self._reader.version_pages(ListQuery.of(query, fields).compile())

    def get(self, ref: str | Ref) -> AdapterVersion:
        """As ``Registry.get``: the same resolution, errors and yanked warning."""
        version = self._reader.resolve(parse_ref(ref) if isinstance(ref, str) else ref)
        warn_if_yanked(version, stacklevel=2)
        return version

    def hub_links(self, version: AdapterVersion) -> builtins.list[HubLink]:
        """Every push and pull of ``version``, as ``hub.links_for_version``."""
        return self._reader.read(lambda execute: read_links(execute, version.name, version.version))

    def count(self, query: ListQuery | None = None, /, **fields: Any) -> int:
        """As ``Registry.count``."""
        return self._reader.count_matching(ListQuery.of(query, fields).compile())

    def close(self) -> None:
        self._reader.close()


def _sqlite_file(url: str) -> Path | None:
    """The file of a plain ``sqlite:///PATH`` URL; None for anything else (other
    databases, URL options), which ``Catalog`` opens."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or url == prefix:
        return None
    return Path(url[len(prefix) :])
