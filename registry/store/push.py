"""Pushing an adapter directory: read and validate, store blobs, record the version.

Blobs are written first and the catalog row last, in one transaction: a crash
in between leaves unreferenced blobs (which gc removes), never a version that
points at a missing or partial blob.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import (
    ArgumentError,
    ConflictError,
    IntegrityError,
    InvalidNameError,
    RegistryError,
    combined_error,
)
from registry.faults import fault_point
from registry.progress import NoProgress, Progress
from registry.store.actor import current_actor
from registry.store.base_names import parse_base as parse_base  # also imported from here
from registry.store.blob_store import BlobBackend, DigestHook
from registry.store.blobs import BlobStore
from registry.store.catalog.catalog import Catalog, NewVersion
from registry.store.conditions import (
    validate_dataset,
    validate_metric,
    validate_score,
    validate_split,
)
from registry.store.gc import PushLeases
from registry.store.hashing import data_digest, given_digest, sha256_bytes
from registry.store.manifest import BaseModelRef, FileEntry, Lineage, Manifest, TrainingDataRef
from registry.store.prehash import BackgroundHashes, Prehashed
from registry.store.refs import next_version, normalize_version, validate_alias, validate_name
from registry.store.results import BaseModelRecord, PushResult, TrainingDataInfo
from registry.store.scores import NewScore
from registry.store.tag_rules import tag_problems
from registry.store.verified_files import staged_sources, verified_for

if TYPE_CHECKING:
    from registry.bases.target import BaseTarget
    from registry.formats import AdapterSource
    from registry.formats.trainer_state import TrainerRecord
    from registry.store.store import Store

TRAINER_DATASET = "trainer"  # the dataset of metrics read from trainer_state.json


class _Unread:
    """A base record not looked up yet (``None`` is "looked up: none recorded")."""


_UNREAD = _Unread()


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
    base_target: BaseTarget | None = None  # base weights already read (a live module)
    exhaustive_base: bool = False  # record full-content digests of the base found
    # Look for the base's weights on this machine by name (a directory, the HF cache).
    # Off for a push a server receives: a client's names and paths mean nothing on the
    # server's disk, and what is there is not the client's to probe.
    locate_base: bool = True
    base_quantization: str | None = None
    requires: Mapping[str, str] = field(default_factory=dict)  # package -> specifier
    # Facts recorded elsewhere and carried over verbatim (an import from the Hub):
    lineage: Lineage | None = None
    exact_base: BaseModelRef | None = None  # the base as recorded, not read or looked up
    known_data: tuple[TrainingDataInfo, ...] = ()  # training data digested elsewhere
    # (metric, value, dataset, split, notes), each with its own dataset and split
    eval_records: tuple[NewScore, ...] = ()
    expect_digest: str | None = None  # refuse to record a manifest with another digest
    audit_details: Mapping[str, Any] | None = None  # added to the push's audit event


def default_name(directory: Path) -> str:
    from registry.formats.trainer_state import checkpoint_step

    named = directory.absolute()
    if named.is_file():
        # A single-file LoRA: its stem, or its directory for diffusers' fixed file name.
        named = named.parent if named.name == "pytorch_lora_weights.safetensors" else named
        named = named.with_name(named.stem) if named.is_file() else named
    if checkpoint_step(named) is not None:
        named = named.parent  # out/run-x/checkpoint-500 is a step of run-x
    try:
        return validate_name(named.name.lower())
    except InvalidNameError:
        raise InvalidNameError(
            f"the directory name {named.name!r} is not a valid adapter name; "
            "pass --name (lowercase letters, digits, '.', '_', '-')"
        ) from None


def _problems(check: Callable[..., object], *args: Any) -> list[InvalidNameError | ArgumentError]:
    try:
        check(*args)
    except (InvalidNameError, ArgumentError) as exc:
        return [exc]
    return []


def _check_annotations(request: PushRequest) -> None:
    # The same rules as `adapters eval`, so every pushed score can be queried later.
    problems = _problems(validate_dataset, request.eval_dataset)
    problems += _problems(validate_split, request.eval_split)
    for metric, value in request.evals.items():
        problems += _problems(validate_metric, metric)
        problems += _problems(validate_score, metric, value)
    for score in request.eval_records:
        problems += _problems(validate_metric, score.metric)
        problems += _problems(validate_score, score.metric, score.value)
        problems += _problems(validate_dataset, score.dataset)
        problems += _problems(validate_split, score.split)
    problems += tag_problems(request.tags)
    from registry.store.base_records import check_quantization  # reads the bases package

    problems += _problems(check_quantization, request.base_quantization)
    if problems:
        raise combined_error(problems)


# Called with the version's name and manifest just before it is recorded; raising
# refuses the push (the alias gates of a policy use it).
PushGate = Callable[[str, Manifest, Sequence[NewScore]], None]


def push(
    store: Store,
    request: PushRequest,
    progress: Progress | None = None,
    gate: PushGate | None = None,
) -> PushResult:
    catalog, blobs, staging_root = store.catalog, store.blobs, store.tmp_dir
    # Every blob this push writes or reuses is leased until its version is recorded,
    # so a concurrent gc cannot delete it in between (see registry/store/gc.py).
    leases = PushLeases(catalog)
    try:
        return _push(request, catalog, blobs, staging_root, progress, gate, leases)
    finally:
        leases.release()


def _push(
    request: PushRequest,
    catalog: Catalog,
    blobs: BlobBackend,
    staging_root: Path,
    progress: Progress | None,
    gate: PushGate | None,
    leases: PushLeases,
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
    data = _with_known_data(data, request.known_data)

    # Only a pickle conversion writes a file of its own; no directory made (and removed)
    # for every other push.
    work_dir: Path | None = None
    if request.convert_pickle:
        staging_root.mkdir(parents=True, exist_ok=True)
        work_dir = Path(tempfile.mkdtemp(prefix="push-", dir=staging_root))
    # Object stores need a large file's digest before they upload it: hashed beside the
    # format checks, which read the same files (see prehash.py).
    staged = staged_sources(request.directory)  # a server's staged uploads, read in place
    hashes = BackgroundHashes(
        request.directory, None if staged is not None else blobs.known_digest_from
    )
    try:
        if staged is not None:
            source = formats.read_adapter_files(staged, label=str(request.directory))
        else:
            source = formats.read_adapter_dir(
                request.directory, convert_pickle=request.convert_pickle, work_dir=work_dir
            )
        base = request.exact_base or _named_base(request, source)
        base_target: BaseTarget | None = request.base_target
        known_base: BaseModelRecord | _Unread | None = _UNREAD
        if source.source_format in formats.SINGLE_FILE_FORMATS:
            source, base_note = _single_file_base(source, request)
            base_target = None
        elif base_target is not None:
            base_note = base_target.label
        else:
            base_target, base_note, known_base = _find_base(catalog, base, request)
        if base_target is not None:
            _refuse_base_clash(catalog, base, base_target)
        verified = _verified_files(request, source, staged)
        store_blobs: Callable[[], None] | None = None
        committed: list[tuple[list[FileEntry], int, int, int]] = []  # what store_blobs did
        if (
            verified
            and isinstance(blobs, BlobStore)
            and all(f.path in verified or f.path == source.config_path for f in source.files)
        ):
            # Every digest is known before any blob is written and storing is a link on
            # this machine: the blobs are stored in the transaction that records the
            # version, with gc held off, so no leases (one commit instead of two).
            entries = _known_entries(source, verified)
            written, written_bytes, repaired = 0, 0, 0

            def store_blobs() -> None:
                files = _store_files(source, blobs, NoProgress(), _no_lease, verified, _unknown)
                if files[0] != entries:
                    raise IntegrityError("a staged file changed before it was stored; push again")
                committed[:] = [files]
        else:
            if verified:  # some digests known: leased in one transaction
                leases.take_all([*verified.values()])
            files = _store_files(source, blobs, progress, leases.take, verified, hashes.known)
            entries, written, written_bytes, repaired = files
    finally:
        hashes.close()
        if work_dir is not None:
            shutil.rmtree(work_dir, ignore_errors=True)
    if request.exact_base is not None:
        base_id = _exact_base_id(catalog, request.exact_base)
    else:
        base, base_id = _record_base(catalog, base, base_target, request, base_note, known_base)

    manifest = Manifest(
        method=source.method,
        source_format=source.source_format,
        config=source.config,
        files=tuple(entries),
        base_model=base,
        training_data=tuple(TrainingDataRef(d.sha256, d.kind) for d in data),
        requires=requires,
        lineage=request.lineage,
        analysis=source.analysis,
    )
    evals = [
        NewScore(metric, float(value), request.eval_dataset, request.eval_split)
        for metric, value in request.evals.items()
    ]
    evals.extend(request.eval_records)
    tags = dict(request.tags)
    trainer = _trainer_record(request.directory, staged)
    if trainer.step is not None:
        tags.setdefault("step", str(trainer.step))
    evals.extend(
        NewScore(metric, value, TRAINER_DATASET, "")
        for metric, value in sorted(trainer.metrics.items())
        if metric not in request.evals
    )
    if request.expect_digest is not None and manifest.digest != request.expect_digest:
        raise IntegrityError(
            f"the adapter read back has digest {manifest.digest}, not the expected "
            f"{request.expect_digest}; nothing was recorded"
        )
    if gate is not None and alias is not None and not _stored(catalog, name, manifest.digest):
        # Content already stored gets its alias later, through the gates of an alias move
        # that see the stored evals too (Registry.push).
        gate(name, manifest, evals)
    fault_point("push.before-commit")
    outcome = catalog.insert_version(
        NewVersion(
            name=name,
            version=version,
            manifest=manifest,
            actor=current_actor(),
            training_data=data,
            evals=evals,
            tags=tags,
            alias=alias,
            base_model_id=base_id,
            # No lease taken (a linked push): nothing to release, no statement for it.
            lease=leases.lease if leases.digests else None,
            store_blobs=store_blobs,
            audit_details=request.audit_details,
        ),
        next_version,
    )
    if committed:
        _entries, written, written_bytes, repaired = committed[0]
    fault_point("push.after-commit")
    leases.settled = True  # released in the transaction that recorded the version
    # Identical content already stored under this name: a no-op returning that
    # version, even when another version number was asked for.
    stored = outcome.version or catalog.get_by_id(outcome.row_id)
    return PushResult(
        version=stored,
        created=outcome.created,
        skipped=tuple(source.skipped),
        blobs_written=written if outcome.created else 0,
        bytes_written=written_bytes if outcome.created else 0,
        base_unverified=None
        if stored.base_model.fingerprint
        else _unverified(base, base_note, source.source_format),
        blobs_repaired=repaired,
    )


def _trainer_record(directory: Path, staged: Mapping[str, Path] | None) -> TrainerRecord:
    from registry.formats.trainer_state import TRAINER_STATE, read_trainer_state

    if staged is not None:
        return read_trainer_state(directory, staged.get(TRAINER_STATE))
    return read_trainer_state(Path(directory))


def _stored(catalog: Catalog, name: str, digest: str) -> bool:
    from registry.store.catalog.engine import read_session
    from registry.store.catalog.lineage_edges import find_version_id

    with read_session(catalog.engine) as session:
        return find_version_id(session, name, digest) is not None


def _named_base(request: PushRequest, source: AdapterSource) -> BaseModelRef:
    if request.base:
        return parse_base(request.base)
    if source.base_model_name:
        return BaseModelRef(source.base_model_name, source.base_model_revision)
    if request.base_path is not None:
        return BaseModelRef(request.base_path.absolute().name)
    if not source.config_path:
        raise RegistryError(
            f"{source.weights_path} records no base model (no ss_sd_model_name in its "
            "metadata); pass --base NAME[@REVISION] or --base-path CHECKPOINT"
        )
    raise RegistryError(
        f"{source.config_path} records no base model (base_model_name_or_path is "
        "empty); pass --base NAME[@REVISION]"
    )


def _find_base(
    catalog: Catalog, base: BaseModelRef, request: PushRequest
) -> tuple[BaseTarget | None, str, BaseModelRecord | _Unread | None]:
    """The base weights to fingerprint: ``--base-path``, else found by the base's name (a
    local directory, the HF cache) unless a record of that name already has a fingerprint;
    and the record of that name looked up on the way (linked to the version, not looked up
    a second time)."""
    from registry.bases.target import locate_base, target_from_directory
    from registry.store.catalog.base_rows import find_base

    if request.base_path is not None:
        if not request.base_path.is_dir():
            raise RegistryError(f"base model directory {request.base_path} does not exist")
        target = target_from_directory(request.base_path, exhaustive=request.exhaustive_base)
        return target, str(request.base_path), _UNREAD
    if request.exact_base is not None or base.name is None:
        note = "the base was recorded without a fingerprint where this version came from"
        return None, note, _UNREAD
    known = find_base(catalog, base.name, base.revision)
    if known is not None and known.fingerprint is not None and not request.exhaustive_base:
        return None, f"recorded base {known.ref}", known
    if not request.locate_base:
        return None, NOT_LOOKED_UP, known
    located = locate_base(base.name, base.revision, exhaustive=request.exhaustive_base)
    return located.target, located.note, known


def _single_file_base(source: AdapterSource, request: PushRequest) -> tuple[AdapterSource, str]:
    """A diffusers / kohya LoRA is checked against the checkpoint given by key shapes (it is
    not fingerprinted); binding everywhere raises its analysis to full, a mismatch refuses."""
    from dataclasses import replace

    from registry.bases.single_file_binding import base_components, bind_single_file
    from registry.formats.single_file import read_single_file

    if request.base_path is None:
        return source, "no base checkpoint was given (--base-path) to check its keys against"
    weights = next(f.source for f in source.files if f.path == source.weights_path)
    modules = read_single_file(source.source_format, weights, source.tensors, {}).modules
    binding = bind_single_file(source.source_format, modules, base_components(request.base_path))
    if not binding.ok:
        raise RegistryError(binding.summary(request.base_path))
    unchecked = f"; not checked: {', '.join(binding.unchecked)}" if binding.unchecked else ""
    note = f"all {binding.checked} modules fit {request.base_path}{unchecked}"
    return replace(source, analysis="full" if not binding.unchecked else "structural"), note


# Why a base a server received went unverified; a client that looked on its own machine
# replaces it with what it found there.
NOT_LOOKED_UP = "no fingerprinted record of it here, and the server does not look on its own disk"


def _unverified(base: BaseModelRef, note: str, source_format: str = "peft") -> str:
    ref = f"{base.name}@{base.revision}" if base.revision else f"{base.name}"
    if source_format in ("diffusers", "kohya"):
        return (
            f"base {ref} is not fingerprinted: a {source_format} LoRA is checked against a "
            f"checkpoint by its keys and shapes only ({note})"
        )
    return (
        f"base {ref} is unverified: its weights were not found ({note}), so loading onto "
        f"other weights cannot be refused; record them with `adapters base add DIR_OR_HUB_ID "
        f"--name {ref}` or push with --base-path DIR"
    )


def _refuse_base_clash(catalog: Catalog, base: BaseModelRef, target: BaseTarget) -> None:
    """Refuse before any blob is written when the base name already means other weights."""
    from registry.store.catalog.base_rows import find_base

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
    catalog: Catalog,
    base: BaseModelRef,
    target: BaseTarget | None,
    request: PushRequest,
    source: str,
    known: BaseModelRecord | _Unread | None = _UNREAD,
) -> tuple[BaseModelRef, int | None]:
    """Link the version to the recorded base; record the base when its weights were given.
    ``known``: the record of the base's name as ``_find_base`` read it, if it did."""
    from registry.store.catalog.base_rows import find_base, record_base

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
            source=source,
            actor=current_actor(),
        )
    else:
        found = find_base(catalog, base.name, base.revision) if known is _UNREAD else known
        if not isinstance(found, BaseModelRecord):
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
            raise ArgumentError(
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


def _with_known_data(
    data: list[TrainingDataInfo], known: Iterable[TrainingDataInfo]
) -> list[TrainingDataInfo]:
    found = {d.sha256: d for d in known}
    found.update((d.sha256, d) for d in data)
    return sorted(found.values(), key=lambda d: d.sha256)


def _exact_base_id(catalog: Catalog, base: BaseModelRef) -> int | None:
    """The recorded base with this very name, revision and fingerprint, if there is one."""
    from registry.store.catalog.base_rows import find_base

    if base.name is None:
        return None
    found = find_base(catalog, base.name, base.revision, exact=True)
    return found.id if found is not None and found.content_digest == base.fingerprint else None


def _no_lease(_sha256: str) -> None:
    pass


def _unknown(_path: Path) -> Prehashed | None:
    """No digest computed ahead: every file of a linked push is already hashed."""
    return None


def _known_entries(source: AdapterSource, verified: Mapping[str, str]) -> list[FileEntry]:
    """The file entries of a push whose every file is verified or the config's bytes."""
    entries = []
    for item in source.files:
        if item.path == source.config_path:
            sha256, size = sha256_bytes(source.config_bytes), len(source.config_bytes)
        else:
            sha256, size = verified[item.path], item.source.stat().st_size
        entries.append(FileEntry(item.path, sha256, size, item.role))
    return entries


def _verified_files(
    request: PushRequest, source: AdapterSource, staged: Mapping[str, Path] | None
) -> dict[str, str]:
    """The files declared verified (``verified_files``) that are stored as they are (not
    converted): the server's staged uploads, hashed and fsynced when they arrived."""
    declared = verified_for(request.directory)
    where = staged or {}
    return {
        item.path: declared[item.path]
        for item in source.files
        if item.path in declared
        and item.path != source.config_path
        and item.source == where.get(item.path, request.directory / item.path)
    }


def _store_files(
    source: AdapterSource,
    blobs: BlobBackend,
    progress: Progress,
    lease: DigestHook,
    verified: Mapping[str, str],
    known: Callable[[Path], Prehashed | None],
) -> tuple[list[FileEntry], int, int, int]:
    entries: list[FileEntry] = []
    written = written_bytes = repaired = 0
    total = sum(f.source.stat().st_size for f in source.files if f.path != source.config_path)
    progress.start("storing", total)
    try:
        for item in source.files:
            if item.path == source.config_path:
                blob = blobs.put_bytes(source.config_bytes, before_commit=lease)
            elif item.path in verified and isinstance(blobs, BlobStore):
                blob = blobs.adopt_file(item.source, verified[item.path], before_commit=lease)
                progress.advance(blob.size)
            elif item.path in verified:
                blob = blobs.put_file(item.source, verified[item.path], progress.advance, lease)
            else:
                ahead = known(item.source)
                blob = blobs.put_file(
                    item.source,
                    ahead.sha256 if ahead is not None else None,
                    progress.advance,
                    before_commit=lease,
                    stamp=ahead.stamp if ahead is not None else None,
                )
            entries.append(FileEntry(item.path, blob.sha256, blob.size, item.role))
            # The blob is in place (renamed, or found already stored) and leased.
            fault_point("push.blob-committed")
            if blob.created or blob.repaired:
                written += 1
                written_bytes += blob.size
            repaired += blob.repaired
    finally:
        progress.finish()
    return entries, written, written_bytes, repaired
