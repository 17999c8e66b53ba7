"""Per-invocation state: which registry, opened once and closed at exit."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import click

from registry import Registry


@dataclass
class AppState:
    registry_path: Path | str | None  # a home directory, or a server URL (http://...)
    _registry: Registry | None = field(default=None, repr=False)

    def registry(self) -> Registry:
        if self._registry is None:
            self._registry = Registry.open(self.registry_path)
            click.get_current_context().call_on_close(self._registry.close)
        return self._registry

    def is_remote(self) -> bool:
        from registry.remote import RemoteRegistry

        return isinstance(self.registry(), RemoteRegistry)


pass_state = click.make_pass_decorator(AppState)
