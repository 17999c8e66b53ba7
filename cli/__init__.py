"""The ``adapters`` command: thin click translators over ``registry``."""

from __future__ import annotations

from registry.cli.main import main

__all__ = ["main"]
