"""Names, versions, aliases and the reference grammar.

    NAME                  highest version that is not yanked
    NAME@VERSION          that exact version (PEP 440; yanked ones too, with a warning)
    NAME@ALIAS            the version an alias points at (aliases never parse as versions)
    NAME@sha256:HEX       the version with that digest (a prefix of 12+ hex digits is enough)
    NAME<SPECIFIER>       e.g. ``name>=1.0,<2``: highest matching version, yanked ones skipped
                          unless pinned with ``==``, as pip does

Names are lowercase ``[a-z0-9][a-z0-9._-]*`` with at most one ``namespace/`` prefix
and at most 96 characters, so that no name can be a path trick.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from registry.errors import InvalidNameError, NotFoundError, YankedVersionWarning

if TYPE_CHECKING:
    from registry.store.results import AdapterVersion

MAX_NAME_LENGTH = 96
VERSION_MAX = 64  # characters of a normalized version
MIN_DIGEST_PREFIX = 12
_SEGMENT = r"[a-z0-9][a-z0-9._-]*"
_NAME_RE = re.compile(rf"^(?:{_SEGMENT}/)?{_SEGMENT}$")
_ALIAS_RE = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
_DIGEST_RE = re.compile(r"^sha256:([0-9a-f]+)$")
_SPECIFIER_START = re.compile(r"[<>=!~]")

RefKind = Literal["latest", "version", "alias", "digest", "specifier"]


def validate_name(name: str) -> str:
    """Return ``name`` if it follows the grammar, else raise with the rule broken."""
    if not name:
        raise InvalidNameError("adapter name is empty")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidNameError(
            f"adapter name {name!r} is {len(name)} characters long; at most {MAX_NAME_LENGTH}"
        )
    if not _NAME_RE.fullmatch(name) or ".." in name:
        raise InvalidNameError(
            f"invalid adapter name {name!r}: use lowercase letters, digits, '.', '_' and '-', "
            "starting with a letter or digit, with at most one 'namespace/' prefix"
        )
    return name


def parse_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise InvalidNameError(
            f"invalid version {text!r}: versions follow PEP 440, e.g. 1, 1.2, 2.0rc1"
        ) from None


def normalize_version(text: str) -> str:
    normal = str(parse_version(text))
    if len(normal) > VERSION_MAX:  # the catalog's column: PostgreSQL would refuse it
        raise InvalidNameError(
            f"version {normal[:40]!r}... is {len(normal)} characters long; at most {VERSION_MAX}"
        )
    return normal


def validate_alias(alias: str) -> str:
    if not _ALIAS_RE.fullmatch(alias):
        raise InvalidNameError(
            f"invalid alias {alias!r}: start with a lowercase letter, then letters, digits, "
            "'.', '_' or '-' (at most 64 characters)"
        )
    if alias == "sha256" or _parses_as_version(alias):
        raise InvalidNameError(
            f"invalid alias {alias!r}: it reads as a version; choose a word such as 'prod'"
        )
    return alias


def _parses_as_version(text: str) -> bool:
    try:
        Version(text)
    except InvalidVersion:
        return False
    return True


@dataclass(frozen=True)
class Ref:
    """A parsed reference to one adapter version."""

    name: str
    kind: RefKind
    value: str = ""  # the version, alias, digest prefix (hex) or specifier text

    def __str__(self) -> str:
        if self.kind == "latest":
            return self.name
        if self.kind == "specifier":
            return f"{self.name}{self.value}"
        if self.kind == "digest":
            return f"{self.name}@sha256:{self.value}"
        return f"{self.name}@{self.value}"

    @property
    def pins_exactly(self) -> bool:
        """Whether the reference names one version explicitly (yanked ones then resolve)."""
        if self.kind in ("version", "digest"):
            return True
        if self.kind == "specifier":
            specs = list(SpecifierSet(self.value))
            return (
                len(specs) == 1
                and specs[0].operator in ("==", "===")
                and "*" not in specs[0].version
            )
        return False


def parse_ref(text: str) -> Ref:
    """Parse a reference string; raise ``InvalidNameError`` saying what is wrong."""
    text = text.strip()
    if not text:
        raise InvalidNameError("empty reference; expected NAME, NAME@VERSION, NAME@ALIAS, ...")
    if "@" in text:
        name, _, rest = text.partition("@")
        validate_name(name)
        if not rest:
            raise InvalidNameError(f"reference {text!r} has nothing after '@'")
        digest = _DIGEST_RE.match(rest)
        if rest.startswith("sha256:"):
            if not digest or len(digest.group(1)) < MIN_DIGEST_PREFIX or len(digest.group(1)) > 64:
                raise InvalidNameError(
                    f"invalid digest in {text!r}: give 'sha256:' and {MIN_DIGEST_PREFIX} to 64 "
                    "lowercase hex digits"
                )
            return Ref(name, "digest", digest.group(1))
        if _parses_as_version(rest):
            return Ref(name, "version", normalize_version(rest))
        validate_alias(rest)
        return Ref(name, "alias", rest)
    match = _SPECIFIER_START.search(text)
    if match:
        name, spec = text[: match.start()].strip(), text[match.start() :].strip()
        validate_name(name)
        try:
            SpecifierSet(spec)
        except InvalidSpecifier:
            raise InvalidNameError(
                f"invalid version specifier {spec!r} in {text!r}: use PEP 440, e.g. '>=1.0,<2'"
            ) from None
        return Ref(name, "specifier", spec)
    return Ref(validate_name(text), "latest")


@dataclass(frozen=True)
class Candidate:
    """One version of a name as resolution sees it."""

    version: str
    yanked: bool


def select_version(ref: Ref, candidates: Iterable[Candidate]) -> Candidate:
    """Pick the version a ``latest``, ``version`` or ``specifier`` reference means.

    Follows pip: pre-releases only when nothing else matches or the specifier names
    one; yanked versions only when the reference pins that version exactly.
    """
    pool: Sequence[Candidate] = list(candidates)
    if not pool:
        raise NotFoundError(f"no adapter named {ref.name!r}")
    if ref.kind == "version":
        wanted = Version(ref.value)
        for cand in pool:
            if Version(cand.version) == wanted:
                return cand
        raise NotFoundError(f"{ref.name} has no version {ref.value}")
    if ref.kind not in ("latest", "specifier"):
        raise ValueError(f"select_version cannot resolve a {ref.kind} reference")
    allow_yanked = ref.pins_exactly
    usable = [c for c in pool if allow_yanked or not c.yanked]
    by_version = {Version(c.version): c for c in usable}
    spec = SpecifierSet(ref.value if ref.kind == "specifier" else "")
    matching = list(spec.filter(by_version.keys()))
    if not matching:
        what = f"matching {ref.value!r}" if ref.kind == "specifier" else "that is not yanked"
        raise NotFoundError(f"{ref.name} has no version {what}")
    return by_version[max(matching)]


def next_version(existing: Iterable[str]) -> str:
    """The automatic next version: one more than the highest major release."""
    versions = [Version(v) for v in existing]
    if not versions:
        return "1"
    highest = max(versions)
    # Keep the epoch: "2" sorts below "1!1.0", so it would not be the newest.
    epoch = f"{highest.epoch}!" if highest.epoch else ""
    return f"{epoch}{highest.release[0] + 1}"


def warn_if_yanked(version: AdapterVersion, *, stacklevel: int = 1) -> None:
    """A reference that resolved to a yanked version (pinned exactly) says so;
    ``stacklevel`` counts from the caller, as ``warnings.warn`` does."""
    if version.yanked:
        warnings.warn(
            f"{version.ref} is yanked ({version.status_reason}); it resolved only because "
            "it was pinned exactly",
            YankedVersionWarning,
            stacklevel=stacklevel + 1,
        )
