"""The catalog schema version this release reads and writes, and where a catalog records
its own (in ``schema_info``); apart from ``schema`` so that readers which never import
SQLAlchemy can check it."""

from __future__ import annotations

SCHEMA_VERSION = 5
VERSION_KEY = "schema_version"
