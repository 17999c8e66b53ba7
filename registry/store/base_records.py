"""Recording base models and checking adapter versions against them.

Glue between the fingerprint, the catalog's base records and the compatibility
checks: what ``adapters base add`` and ``verify --base`` and the loader share.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from registry.bases.compat import CompatReport, check, unverified_base_message
from registry.bases.target import (
    QUANTIZATIONS,
    BaseTarget,
    target_from_directory,
    target_from_hub_cache,
    target_from_record,
)
from registry.check import Check
from registry.errors import ArgumentError, FingerprintError
from registry.store.actor import current_actor
from registry.store.base_names import validate_base
from registry.store.catalog.base_rows import (
    find_base,
    find_by_content,
    record_base,
    related_contents,
)
from registry.store.catalog.catalog import Catalog
from registry.store.refs import normalize_version
from registry.store.results import AdapterVersion, BaseModelRecord

if TYPE_CHECKING:
    from registry.store.store import Store


def add_base(
    catalog: Catalog,
    source: str,
    *,
    name: str | None = None,
    version: str | None = None,
    quantization: str | None = None,
    exhaustive: bool = False,
) -> BaseModelRecord:
    """Fingerprint ``source`` (a directory, or HUB_ID[@REV] in the local HF cache) and record it;
    ``exhaustive`` records every tensor's full-content digest as well."""
    check_quantization(quantization)
    if name:  # refused before the weights are read
        validate_base(name, *_name_and_revision(name))
    target, default_name, revision = read_base_source(source, exhaustive=exhaustive)
    return record_target(
        catalog, target, name or default_name, revision=revision, version=version,
        quantization=quantization, source=str(source),
    )  # fmt: skip


def _name_and_revision(name: str) -> tuple[str, str]:
    record_name, _, record_revision = name.partition("@")
    return record_name, record_revision


def check_quantization(quantization: str | None) -> None:
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise ArgumentError(
            f"unknown quantization {quantization!r}; use one of {', '.join(QUANTIZATIONS)}"
        )


def read_base_source(
    source: str, *, exhaustive: bool = False
) -> tuple[BaseTarget, str, str | None]:
    """The weights ``source`` names (a directory, or HUB_ID[@REV] in the local HF cache),
    with the name and revision a record of them gets by default."""
    path = Path(source).expanduser()
    revision: str | None = None
    if path.is_dir():
        target = target_from_directory(path, exhaustive=exhaustive)
        default_name = str(target.config.get("_name_or_path") or path.absolute().name)
    else:
        target = target_from_hub_cache(source, exhaustive=exhaustive)
        default_name, _, revision = source.partition("@")
        revision = revision or target.label.partition("@")[2]
    return target, default_name, revision


def record_target(
    catalog: Catalog,
    target: BaseTarget,
    name: str,
    *,
    revision: str | None = None,
    version: str | None = None,
    quantization: str | None = None,
    source: str,
) -> BaseModelRecord:
    """Record the weights ``target`` read as base ``name`` (``NAME@REV`` names a revision)."""
    record_name, record_revision = _name_and_revision(name)
    validate_base(name, record_name, record_revision or revision)
    record, _created = record_base(
        catalog,
        name=record_name,
        revision=record_revision or revision,
        version=normalize_version(version) if version else None,
        quantization=quantization or target.quantization,
        fingerprint=target.fingerprint,
        config=dict(target.config),
        source=source,
        actor=current_actor(),
    )
    return record


def adapter_shapes(store: Store, version: AdapterVersion) -> dict[str, tuple[int, ...]]:
    from registry.formats import read_safetensors_header

    weights = next(f for f in version.files if f.role == "weights")
    tensors, _ = read_safetensors_header(store.blobs.path(weights.sha256))
    return {name: tuple(info.shape) for name, info in tensors.items()}


@dataclass(frozen=True)
class KnownBase:
    """What a catalog knows of the base a version was trained on: its record (with the
    samples that tell a dtype cast from other weights, and its quantization), and the
    contents related to it by recorded relations (content digest -> relation)."""

    trained_on: BaseModelRecord | None
    related: dict[str, str]


def known_base(catalog: Catalog, version: AdapterVersion) -> KnownBase:
    """The record of the base ``version`` was trained on, and what relates to it.

    A version pushed without a base fingerprint is matched with the base recorded later
    under exactly the name and revision it gives (``adapters base add ... --name``)."""
    trained_on = None
    related: dict[str, str] = {}
    recorded = version.base_model.fingerprint
    if recorded is not None:
        matches = find_by_content(catalog, recorded)
        trained_on = matches[0] if matches else None
    elif version.base_model.name:
        named = find_base(
            catalog, version.base_model.name, version.base_model.revision, exact=True
        )
        trained_on = named if named is not None and named.fingerprint is not None else None
        recorded = trained_on.content_digest if trained_on is not None else None
    if recorded is not None:
        related = related_contents(catalog, recorded)
    return KnownBase(trained_on, related)


def compat_for_target(
    store: Store,
    version: AdapterVersion,
    target: BaseTarget,
    *,
    allow_unverified_base: bool = False,
    known: KnownBase | None = None,
    shapes: dict[str, tuple[int, ...]] | None = None,
) -> CompatReport:
    """Every compatibility check of ``version`` against ``target``, with what the catalog
    knows of the base the adapter was trained on and of recorded relations (``known``:
    that knowledge from elsewhere, a registry server's catalog; ``shapes``: the adapter's
    tensor shapes when the caller has read them already).

    With no fingerprint of the base trained on, the weights check fails unless
    ``allow_unverified_base``.
    """
    known = known if known is not None else known_base(store.catalog, version)
    return check(
        version,
        shapes if shapes is not None else adapter_shapes(store, version),
        target,
        trained_on=known.trained_on,
        related=known.related,
        requires=version.manifest.requires,
        allow_unverified_base=allow_unverified_base,
    )


def resolve_target(
    text: str, catalog: Catalog | None = None, *, exhaustive: bool = False
) -> BaseTarget:
    """A directory if ``text`` is a path, else a recorded base, else a Hub cache snapshot;
    ``exhaustive`` hashes every tensor of weights on disk in full."""
    path = Path(text).expanduser()
    if path.exists():
        if not path.is_dir():
            raise FingerprintError(f"{text}: expected a model directory")
        return target_from_directory(path, exhaustive=exhaustive)
    if catalog is not None:
        name, _, revision = text.partition("@")
        record = find_base(catalog, name, revision or None)
        if record is not None and record.fingerprint is not None:
            return target_from_record(record)
    return target_from_hub_cache(text, exhaustive=exhaustive)


def base_state_check(catalog: Catalog, version: AdapterVersion) -> Check:
    """Whether the base ``version`` was trained on has a fingerprint to check bases against:
    recorded at push, or recorded later under the name and revision it gives."""
    base = version.base_model
    if base.fingerprint is not None:
        return Check("base recorded", "pass", f"base fingerprint {base.fingerprint[:19]}...")
    named = find_base(catalog, base.name, base.revision, exact=True) if base.name else None
    if named is not None and named.content_digest is not None:
        return Check(
            "base recorded",
            "pass",
            f"base {named.ref} recorded after the push ({named.content_digest[:19]}...)",
        )
    return Check("base recorded", "warn", unverified_base_message(version))
