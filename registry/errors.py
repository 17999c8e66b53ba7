"""The one exception tree of the registry.

Every error the library raises on purpose derives from ``RegistryError``; the CLI
turns any of them into a one-line message and exit code 1.

    RegistryError
    ├── HomeError                  registry home missing, unreadable or not a registry
    ├── InvalidNameError           a name, version, alias or reference that does not parse
    ├── NotFoundError              no adapter version / base model matches a reference
    ├── ConflictError              a version that exists with other content, an alias clash
    ├── FormatError                an adapter directory that cannot be read
    │   └── UnsafeFormatError      pickle weights, symlinks leaving the directory
    ├── ValidationError            config or tensors that break their schema; carries every problem
    ├── IntegrityError             a blob or digest that does not match what was recorded
    ├── CatalogError               the database cannot be opened or is at an unknown schema version
    ├── FingerprintError           base weights that cannot be fingerprinted, or compared
    └── ExportError                an export target that cannot be written
"""

from __future__ import annotations

from collections.abc import Sequence


class RegistryError(Exception):
    """Root of every error raised by the registry on purpose."""


class HomeError(RegistryError):
    """The registry home cannot be found, created or used."""


class InvalidNameError(RegistryError, ValueError):
    """A name, version, alias or reference string does not follow the grammar."""


class NotFoundError(RegistryError, LookupError):
    """Nothing in the catalog matches the given reference."""


class ConflictError(RegistryError):
    """The request contradicts what the catalog already holds."""


class FormatError(RegistryError):
    """An adapter directory or file cannot be read as any supported format."""


class UnsafeFormatError(FormatError):
    """Input refused because reading it could run code or escape its directory."""


class ValidationError(RegistryError):
    """Config or tensors break their schema. ``problems`` lists every one found."""

    def __init__(self, subject: str, problems: Sequence[str]) -> None:
        self.subject = subject
        self.problems = list(problems)
        shown = "; ".join(self.problems[:5])
        more = f" (and {len(self.problems) - 5} more)" if len(self.problems) > 5 else ""
        super().__init__(f"{subject}: {len(self.problems)} problem(s): {shown}{more}")


class IntegrityError(RegistryError):
    """Stored bytes do not match their recorded hash, or a digest does not recompute."""


class CatalogError(RegistryError):
    """The catalog database cannot be opened, or its schema is not one we know."""


class FingerprintError(RegistryError):
    """Base weights cannot be found or fingerprinted, or two fingerprints cannot be compared."""


class ExportError(RegistryError):
    """An export target cannot be written."""
