"""Per-invocation state: which registry, opened once and closed at exit."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from registry.api import Registry
    from registry.facade.reader import CatalogReader
    from registry.store.catalog.hub_link_rows import HubLink
    from registry.store.home import RegistryHome
    from registry.store.results import AdapterVersion


@dataclass
class AppState:
    registry_path: Path | str | None  # a home directory, or a server URL (http://...)
    _registry: Registry | None = field(default=None, repr=False)

    @property
    def explicit_registry(self) -> bool:
        return self.registry_path is not None

    def registry(self) -> Registry:
        if self._registry is None:
            # Imported on use: the catalog pulls SQLAlchemy, which --help never needs.
            from registry.api import Registry

            self._registry = Registry.open(self.registry_path)
            click.get_current_context().call_on_close(self._registry.close)
            if not self.is_remote():
                announce_home(self._registry.home)
        return self._registry

    def reader(self) -> Registry | CatalogReader:
        """For commands that only list: a local SQLite catalog read without SQLAlchemy
        (much faster to start), else the registry itself."""
        if self._registry is None:
            from registry.facade.reader import CatalogReader

            reader = CatalogReader.open(self.registry_path)
            if reader is not None:
                click.get_current_context().call_on_close(reader.close)
                announce_home(reader.home)
                return reader
        return self.registry()

    def hub_links(
        self, registry: Registry | CatalogReader, version: AdapterVersion
    ) -> list[HubLink]:
        """``version``'s pushes to and pulls from the Hub, read where ``registry`` reads."""
        from registry.facade.reader import CatalogReader

        if isinstance(registry, CatalogReader):
            return registry.hub_links(version)
        if self.is_remote():
            return []  # they live in the catalog, which a server does not expose (yet)
        from registry.hub.links import links_for_version

        return links_for_version(registry.catalog, version.name, version.version)

    def is_remote(self) -> bool:
        """A server URL, given with --registry or ADAPTERS_URL (as Registry.open reads it)."""
        from registry.store.home import SERVER_SCHEMES, refuse_url, url_scheme

        target = self.registry_path
        if target is None:
            target = os.environ.get("ADAPTERS_URL", "")
            refuse_url(target, "ADAPTERS_URL")
        else:
            refuse_url(str(target))
        return url_scheme(str(target)) in SERVER_SCHEMES


def announce_home(home: RegistryHome) -> None:
    """Name the registry on stderr when it is the implicit user-data one: outside a
    project it would otherwise be used silently."""
    if home.found_by == "user-default":
        click.echo(
            f"using registry {home.root} (user default; choose another with "
            "--registry, ADAPTERS_HOME or `adapters init`)",
            err=True,
        )


pass_state = click.make_pass_decorator(AppState)
