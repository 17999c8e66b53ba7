"""The one exception tree of the registry.

Every error the library raises on purpose derives from ``RegistryError``; the CLI
turns any of them into a one-line message and exit code 1.

    RegistryError
    ├── HomeError                  registry home missing, unreadable or not a registry
    ├── InvalidNameError           a name, version, alias or reference that does not parse
    ├── ArgumentError              a parameter outside what the operation accepts (a rank,
    │                              density, weight, status, sort key, limit, depth, relation,
    │                              quantization, note length, condition syntax...)
    ├── NotFoundError              no adapter version / base model matches a reference
    ├── ConflictError              a version that exists with other content, an alias clash,
    │                              removing a version an alias points at
    ├── GateError                  a promotion gate (policy or --require) that is not met
    ├── FormatError                an adapter directory that cannot be read
    │   └── UnsafeFormatError      pickle weights, symlinks leaving the directory
    ├── ValidationError            config or tensors that break their schema; carries every problem
    ├── IntegrityError             a blob or digest that does not match what was recorded
    ├── SignatureError             a signing key that cannot be used, or a version refused
    │                              because a policy requires a trusted signature it lacks
    ├── CatalogError               the database cannot be opened or is at an unknown schema version
    │   ├── CatalogMissingError    a home whose catalog is gone or empty (never re-created silently)
    │   └── CatalogMismatchError   gc refused: the catalog does not look like the blob store's
    ├── FingerprintError           base weights that cannot be fingerprinted, or compared
    ├── UnsupportedMethodError     an operation that is not meaningful for an adapter's method
    ├── IncompatibleAdaptersError  adapters that cannot be combined with each other (layouts,
    │                              methods, fan_in_fan_out, bases)
    ├── BaseModelMismatchError     an adapter refused for a base model; carries the CompatReport
    ├── BlobStoreError             object storage that cannot be reached, refuses the
    │                              credentials, has no such bucket, or keeps throttling
    ├── HubError                   a Hugging Face Hub push, pull or status that failed (missing
    │                              repo or revision, a concurrent push, a file that does not
    │                              match the Hub's hash, a lost connection); nothing half-done
    ├── ExportError                an export target that cannot be written
    ├── AccessError                a registry server refused the token: missing, unknown,
    │                              expired or revoked, or its role or namespace too narrow
    └── ServerError                a registry server that cannot be reached, or answered
                                   with something that is not the registry's API

Warnings (not errors): ``YankedVersionWarning`` when a reference lands on a yanked
version, which still resolves because it was pinned exactly (PEP 592).
"""

from __future__ import annotations

from collections.abc import Sequence


class RegistryError(Exception):
    """Root of every error raised by the registry on purpose."""


class HomeError(RegistryError):
    """The registry home cannot be found, created or used."""


class InvalidNameError(RegistryError, ValueError):
    """A name, version, alias or reference string does not follow the grammar."""


class ArgumentError(RegistryError, ValueError):
    """A parameter outside what the operation accepts (a rank, density, weight, status, sort
    key, limit, depth, quantization, relation, note length, condition syntax...)."""


def combined_error(
    errors: Sequence[InvalidNameError | ArgumentError], prefix: str = ""
) -> InvalidNameError | ArgumentError:
    """Several refused inputs as one error, so that every problem is reported at once: an
    ``InvalidNameError`` when each of them is about a name, else an ``ArgumentError``."""
    message = prefix + "; ".join(str(e) for e in errors)
    if all(isinstance(e, InvalidNameError) for e in errors):
        return InvalidNameError(message)
    return ArgumentError(message)


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


class SignatureError(RegistryError):
    """A key cannot be used for signing, or a trusted signature required by policy is missing."""


class CatalogError(RegistryError):
    """The catalog database cannot be opened, or its schema is not one we know."""


class CatalogMissingError(CatalogError):
    """A catalog that is not there (or holds no schema) where one is expected."""


class CatalogMismatchError(CatalogError):
    """The catalog does not look like the blob store's own; deleting by it would lose data."""


class FingerprintError(RegistryError):
    """Base weights cannot be found or fingerprinted, or two fingerprints cannot be compared."""


class ExportError(RegistryError):
    """An export target cannot be written."""


class UnsupportedMethodError(RegistryError):
    """The operation is not meaningful for this adapter method (e.g. folding prompt tuning)."""


class IncompatibleAdaptersError(RegistryError):
    """Adapters given to one operation that cannot be combined with each other."""


class BaseModelMismatchError(RegistryError):
    """The adapter does not fit the base model it was pointed at.

    ``report`` is the ``registry.bases.compat.CompatReport`` whose failed checks say what differs.
    """

    def __init__(self, message: str, report: object) -> None:
        super().__init__(message)
        self.report = report


class GateError(RegistryError):
    """A promotion gate is not met. ``unmet`` names each requirement that failed."""

    def __init__(self, message: str, unmet: Sequence[str]) -> None:
        self.unmet = list(unmet)
        super().__init__(message)


class BlobStoreError(RegistryError):
    """The blob store (object storage) failed: unreachable, refused, throttled, missing."""


class HubError(RegistryError):
    """A sync with the Hugging Face Hub failed; nothing was half-imported or half-pushed."""


class AccessError(RegistryError):
    """A registry server refused the request's token (authentication or authorisation)."""


class ServerError(RegistryError):
    """A registry server cannot be reached, or did not answer as the registry's API does."""


class YankedVersionWarning(UserWarning):
    """A reference resolved to a yanked version (allowed only when pinned exactly)."""
