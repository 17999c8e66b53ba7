"""Pushing an adapter directory: read and validate, store blobs, record the version.

Blobs are written first and the catalog row last, in one transaction: a crash
in between leaves unreferenced blobs (which gc removes), never a version that
points at a missing or partial blob.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from registry.actor import current_actor
from registry.blobs import BlobStore
from registry.catalog.store import Catalog, NewVersion
from registry.errors import ConflictError, InvalidNameError, RegistryError
from registry.hashing import data_digest, given_digest
from registry.manifest import BaseModelRef, FileEntry, Manifest, TrainingDataRef
from registry.progress import NoProgress, Progress
from registry.refs import next_version, normalize_version, validate_alias, validate_name
from registry.results import PushResult, TrainingDataInfo

if TYPE_CHECKING:
    from registry.base_target import BaseTarget
    from registry.formats import AdapterSource

_METRIC_MAX = 128
_TAG_KEY_MAX = 128


@dataclass(frozen=True)
class PushRequest:
    directory: Path
    name: str | None = None
    version: str | None = None
    base: str | None = None  # NAME[@REV], overrides adapter_config.json
    data: tuple[Path, ...] = ()
    data_hashes: tuple[str, ...] = ()
    evals: Mapping[str, float] = field(default_factory=dict)
    eval_dataset: str = ""
    eval_split: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)
    alias: str | None = None
    convert_pickle: bool = False
    base_path: Path | None = None  # base weights to fingerprint and record
    base_quantization: str | None = None
    requires: Mapping[str, str] = field(default_factory=dict)  # package -> specifier


def default_name(directory: Path) -> str:
    candidate = directory.absolute().name.lower()
    try:
        return validate_name(candidate)
    except InvalidNameError:
        raise InvalidNameError(
            f"the directory name {directory.absolute().name!r} is not a valid adapter name; "
            "pass --name (lowercase letters, digits, '.', '_', '-')"
        ) from None


def parse_base(text: str) -> BaseModelRef:
    name, _, revision = text.strip().partition("@")
    if not name or any(c.isspace() for c in text.strip()):
        raise InvalidNameError(f"invalid base model {text!r}: expected NAME or NAME@REVISION")
    return BaseModelRef(name=name, revision=revision or None)


def _check_annotations(request: PushRequest) -> None:
    problems = []
    for metric, value in request.evals.items():
        if not metric or len(metric) > _METRIC_MAX or any(c.isspace() for c in metric):
            problems.append(f"invalid metric name {metric!r}")
        if value != value or value in (float("inf"), float("-inf")):
            problems.append(f"eval {metric} is not a finite number")
    for key in request.tags:
        if not key or len(key) > _TAG_KEY_MAX or any(c.isspace() for c in key):
            problems.append(f"invalid tag key {key!r}")
    if problems:
        raise InvalidNameError("; ".join(problems))


def push(
    request: PushRequest,
    catalog: Catalog,
    blobs: BlobStore,
    staging_root: Path,
    progress: Progress | None = None,
) -> PushResult:
    # Imported here so that commands which never read adapters stay light.
    from registry import formats

    progress = progress or NoProgress()
    name = validate_name(request.name) if request.name else default_name(request.directory)
    version = normalize_version(request.version) if request.version else None
    alias = validate_alias(request.alias) if request.alias else None
    _check_annotations(request)
    requires = _check_requires(request.requires)
    # Digest the training data before touching the store: a missing path fails early.
    data = _training_data(request.data, request.data_hashes)

    staging_root.mkdir(parents=True, exist_ok=True)
    work_dir = Path(tempfile.mkdtemp(prefix="push-", dir=staging_root))
    try:
        source = formats.read_adapter_dir(
            request.directory, convert_pickle=request.convert_pickle, work_dir=work_dir
        )
        base = _named_base(request, source)
        base_target = _fingerprint_base(request.base_path) if request.base_path else None
        if base_target is not None:
            _refuse_base_clash(catalog, base, base_target)
        entries, written, written_bytes = _store_files(source, blobs, progress)
    finally:
        shutil.rmtree(work_dir, ignore_errors=True)
    base, base_id = _record_base(catalog, base, base_target, request)

    manifest = Manifest(
        method=source.method,
        source_format=source.source_format,
        config=source.config,
        files=tuple(entries),
        base_model=base,
        training_data=tuple(TrainingDataRef(d.sha256, d.kind) for d in data),
        requires=requires,
    )
    outcome = catalog.insert_version(
        NewVersion(
            name=name,
            version=version,
            manifest=manifest,
            actor=current_actor(),
            training_data=data,
            evals=[
                (metric, float(value), request.eval_dataset, request.eval_split, "")
                for metric, value in request.evals.items()
            ],
            tags=dict(request.tags),
            alias=alias,
            base_model_id=base_id,
        ),
        next_version,
    )
    # Identical content already stored under this name: a no-op returning that
    # version, even when another version number was asked for.
    stored = catalog.get_by_id(outcome.row_id)
    return PushResult(
        version=stored,
        created=outcome.created,
        skipped=tuple(source.skipped),
        blobs_written=written if outcome.created else 0,
        bytes_written=written_bytes if outcome.created else 0,
    )


def _named_base(request: PushRequest, source: AdapterSource) -> BaseModelRef:
    if request.base:
        return parse_base(request.base)
    if source.base_model_name:
        return BaseModelRef(source.base_model_name, source.base_model_revision)
    if request.base_path is not None:
        return BaseModelRef(request.base_path.absolute().name)
    raise RegistryError(
        f"{source.config_path} records no base model (base_model_name_or_path is "
        "empty); pass --base NAME[@REVISION]"
    )


def _fingerprint_base(path: Path) -> BaseTarget:
    from registry.base_target import target_from_directory

    if not path.is_dir():
        raise RegistryError(f"base model directory {path} does not exist")
    return target_from_directory(path)


def _refuse_base_clash(catalog: Catalog, base: BaseModelRef, target: BaseTarget) -> None:
    """Refuse before any blob is written when the base name already means other weights."""
    from registry.catalog.bases import find_base

    assert base.name is not None
    found = find_base(catalog, base.name, base.revision, exact=True)
    content = target.fingerprint.content
    if found is not None and found.content_digest not in (None, content):
        raise ConflictError(
            f"base model {found.ref} is recorded with other weights "
            f"({str(found.content_digest)[:19]}..., these are {content[:19]}...); "
            "name these with --base NAME@REVISION"
        )


def _record_base(
    catalog: Catalog, base: BaseModelRef, target: BaseTarget | None, request: PushRequest
) -> tuple[BaseModelRef, int | None]:
    """Link the version to the recorded base; record the base when its weights were given."""
    from registry.catalog.bases import find_base, record_base

    assert base.name is not None
    if target is not None:
        record, _ = record_base(
            catalog,
            name=base.name,
            revision=base.revision,
            version=None,
            quantization=request.base_quantization or target.quantization,
            fingerprint=target.fingerprint,
            config=dict(target.config),
            source=str(request.base_path),
            actor=current_actor(),
        )
    else:
        found = find_base(catalog, base.name, base.revision)
        if found is None:
            return base, None
        record = found
    return BaseModelRef(base.name, base.revision, record.content_digest), record.id


def _check_requires(requires: Mapping[str, str]) -> dict[str, str]:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    checked = {}
    for package, spec in requires.items():
        try:
            SpecifierSet(spec)
        except InvalidSpecifier:
            raise InvalidNameError(
                f"invalid requirement {package}{spec}: use e.g. 'peft>=0.14'"
            ) from None
        checked[package.strip().lower()] = spec.strip()
    return dict(sorted(checked.items()))


def _training_data(paths: Iterable[Path], hashes: Iterable[str]) -> list[TrainingDataInfo]:
    found: dict[str, TrainingDataInfo] = {}
    for path in paths:
        digest = data_digest(Path(path))
        found.setdefault(
            digest.sha256,
            TrainingDataInfo(digest.sha256, digest.kind, digest.source, digest.files, digest.size),
        )
    for text in hashes:
        digest = given_digest(text)
        found.setdefault(
            digest.sha256, TrainingDataInfo(digest.sha256, "given", digest.source, 0, 0)
        )
    return sorted(found.values(), key=lambda d: d.sha256)


def _store_files(
    source: AdapterSource, blobs: BlobStore, progress: Progress
) -> tuple[list[FileEntry], int, int]:
    entries: list[FileEntry] = []
    written = written_bytes = 0
    total = sum(f.source.stat().st_size for f in source.files if f.path != source.config_path)
    progress.start("storing", total)
    try:
        for item in source.files:
            if item.path == source.config_path:
                blob = blobs.put_bytes(source.config_bytes)
            else:
                blob = blobs.put_file(item.source, progress=progress.advance)
            entries.append(FileEntry(item.path, blob.sha256, blob.size, item.role))
            if blob.created:
                written += 1
                written_bytes += blob.size
    finally:
        progress.finish()
    return entries, written, written_bytes
