"""The remote registry: the ``Registry`` surface over ``adapters server``'s HTTP API.

Importing this package installs the opener of ``http://`` and ``https://`` URLs for
``Registry.open`` (``registry/__init__.py`` imports it). httpx is imported only when a
remote registry is opened.
"""

from __future__ import annotations

from registry.api import URL_OPENERS
from registry.remote.client import RemoteRegistry

for _scheme in ("http", "https"):
    URL_OPENERS[_scheme] = RemoteRegistry.connect

__all__ = ["RemoteRegistry"]
