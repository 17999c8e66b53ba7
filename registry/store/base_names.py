"""Base model names as a push (``--base NAME[@REV]``) or a base record names them, checked
to what every catalog backend stores alike: printable, no whitespace, at most
``BASE_LABEL_MAX`` characters for the name and for the revision (PostgreSQL holds no NUL
and no longer value in those columns, where SQLite would take anything)."""

from __future__ import annotations

from registry.errors import InvalidNameError
from registry.formats.config_file import BASE_LABEL_MAX
from registry.store.manifest import BaseModelRef


def validate_base(text: str, name: str, revision: str | None) -> None:
    """``name`` and ``revision`` (given together as ``text``) as the catalog can hold them:
    printable (a space is: a base recorded by the path it was read from may hold one)."""
    parts = (name, revision or "")
    if not name or max(map(len, parts)) > BASE_LABEL_MAX or not "".join(parts).isprintable():
        raise InvalidNameError(
            f"invalid base model {text[:80]!r}: expected NAME or NAME@REVISION, printable, "
            f"at most {BASE_LABEL_MAX} characters each"
        )


def parse_base(text: str) -> BaseModelRef:
    """``NAME`` or ``NAME@REVISION`` as ``--base`` takes it: no whitespace either."""
    name, _, revision = text.strip().partition("@")
    if any(c.isspace() for c in text.strip()):
        raise InvalidNameError(f"invalid base model {text[:80]!r}: expected NAME or NAME@REVISION")
    validate_base(text, name, revision)
    return BaseModelRef(name=name, revision=revision or None)
