"""New versions made by operators: combine, resize, extract.

Each reads its inputs (parent versions from the blob store, or model directories), runs the
operator in ``registry.ops``, writes the result as a PEFT directory in the registry's
staging area and stores it through the ordinary push, with a ``Lineage`` naming the parents
(name, version, digest, weight), the operation, its parameters and the tool version. Push is
where blobs, the catalog row, lineage edges and the audit event are written; nothing here
writes to the catalog itself.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import IncompatibleAdaptersError, IntegrityError, UnsupportedMethodError
from registry.faults import fault_point
from registry.formats.lora_init import base_rewriting_init, base_rewriting_message
from registry.progress import Progress
from registry.store.manifest import BaseModelRef, Lineage, ParentRef
from registry.store.push import PushRequest, push
from registry.store.refs import normalize_version, validate_alias, validate_name
from registry.store.results import AdapterVersion, PushResult

if TYPE_CHECKING:
    from registry.bases.target import BaseTarget
    from registry.ops.methods import CombineSpec
    from registry.ops.produced import Produced
    from registry.ops.tensors import AdapterTensors
    from registry.store.store import Store


@dataclass(frozen=True)
class DeriveResult:
    """The stored version an operator produced (or the identical one already stored)."""

    version: AdapterVersion
    created: bool
    lineage: Lineage
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.version.ref,
            "digest": self.version.digest,
            "created": self.created,
            "method": self.version.method,
            "lineage": self.version.manifest.to_dict()["lineage"],
            "notes": list(self.notes),
        }


@dataclass(frozen=True)
class Destination:
    """Where and how the new version is stored."""

    name: str
    version: str | None = None
    alias: str | None = None
    tags: Mapping[str, str] = field(default_factory=dict)
    # A registry server refuses a version named NS/... whose lineage names parents outside
    # NS/ (their names and digests would show to NS/'s tokens) unless this says it is meant.
    allow_lineage_outside_namespace: bool = False

    def __post_init__(self) -> None:
        # Checked before any tensor work, so a typo fails at once rather than after it.
        validate_name(self.name)
        if self.version is not None:
            normalize_version(self.version)
        if self.alias is not None:
            validate_alias(self.alias)


@dataclass(frozen=True)
class Derived:
    """What an operator computed, before it is stored: the adapter, its lineage, and the
    base to record (the parents' base as they recorded it, or ``base_path`` weights to
    fingerprint). A local registry stores it through push; a remote client uploads it."""

    produced: Produced
    lineage: Lineage
    base: BaseModelRef
    base_path: Path | None = None


def _tool_version() -> str:
    from registry.release import __version__

    return f"adapter-registry {__version__}"


def parent_tensors(store: Store, version: AdapterVersion) -> AdapterTensors:
    """A stored version's config and tensors, its weights blob checked first."""
    from registry.ops.tensors import load_adapter_tensors

    init = base_rewriting_init(version.method, version.manifest.config)
    if init is not None:
        raise UnsupportedMethodError(base_rewriting_message(version.ref, init))
    weights = next((f for f in version.files if f.role == "weights"), None)
    if weights is None:
        raise IntegrityError(f"{version.ref} has no weights file")
    problem = store.blobs.check_local(weights.sha256, weights.size)
    if problem is not None:
        raise IntegrityError(f"{version.ref}: {weights.path}: {problem}")
    return load_adapter_tensors(
        version.method, version.manifest.config, store.blobs.path(weights.sha256)
    )


def shared_base(
    versions: Sequence[AdapterVersion], allow_different: bool
) -> tuple[BaseModelRef, list[str]]:
    """The base every parent was made for: same recorded weights (fingerprint) when both
    have one, else the same name and revision. With ``allow_different`` the first parent's
    base, and the differences found (recorded in the lineage)."""
    first = versions[0].base_model
    problems = []
    for other in versions[1:]:
        base = other.base_model
        if first.fingerprint and base.fingerprint:
            same = first.fingerprint == base.fingerprint
        else:
            same = (first.name, first.revision) == (base.name, base.revision)
        if not same:
            problems.append(
                f"{versions[0].ref} is for {_label(first)}, {other.ref} for {_label(base)}"
            )
    if problems and not allow_different:
        raise IncompatibleAdaptersError(
            "the adapters were made for different base models ("
            + "; ".join(problems)
            + "); a combination would fit neither. Pass allow_different_bases "
            "(--allow-different-bases) if the bases are known to be the same weights"
        )
    return first, problems


def _label(base: BaseModelRef) -> str:
    name = base.name or "an unnamed base"
    text = f"{name}@{base.revision}" if base.revision else name
    return text + (f" ({base.fingerprint[:19]}...)" if base.fingerprint else "")


def store_produced(
    store: Store,
    produced: Produced,
    lineage: Lineage,
    destination: Destination,
    *,
    base: BaseModelRef | None = None,
    base_path: Path | None = None,
    progress: Progress | None = None,
) -> DeriveResult:
    """Write ``produced`` as a PEFT directory and push it with ``lineage``.

    ``base`` is recorded exactly as given (the parents' base); ``base_path`` instead names
    base weights to fingerprint and record, as ``push --base-path`` does.
    """
    derived = Derived(produced, lineage, base or BaseModelRef(None), base_path)
    staging_root = store.tmp_dir
    staging_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="derive-", dir=staging_root))
    try:
        directory = write_derived(derived, staging / "adapter")
        result = push_derived(
            store, directory, lineage, destination, base=derived.base, base_path=base_path,
            progress=progress,
        )  # fmt: skip
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return DeriveResult(result.version, result.created, lineage, produced.notes)


def write_derived(derived: Derived, directory: Path) -> Path:
    from registry.formats import write_peft_adapter

    write_peft_adapter(directory, derived.produced.config, derived.produced.tensors)
    return directory


def push_derived(
    store: Store,
    directory: Path,
    lineage: Lineage,
    destination: Destination,
    *,
    base: BaseModelRef,
    base_path: Path | None = None,
    base_target: BaseTarget | None = None,
    progress: Progress | None = None,
    audit_details: Mapping[str, Any] | None = None,
) -> PushResult:
    """Push a derived adapter ``directory`` with its lineage, behind the alias's push gate.

    ``base_target``: base weights already read elsewhere (a client's fingerprint of
    ``base_path``), recorded in place of reading ``base_path`` here. ``audit_details`` are
    added to the push's audit event."""
    from registry.lifecycle.aliases import push_gate

    weights = base_path is not None or base_target is not None
    request = PushRequest(
        directory=directory,
        name=destination.name,
        version=destination.version,
        alias=destination.alias,
        tags=dict(destination.tags),
        lineage=lineage,
        # The parents' base as they recorded it; or base weights to fingerprint.
        exact_base=base if not weights and base.name else None,
        base=_base_text(base) if weights and base.name else None,
        base_path=base_path if base_target is None else None,
        base_target=base_target,
        audit_details=audit_details,
    )
    gate = push_gate(store.root, destination.alias) if destination.alias else None
    return push(store, request, progress, gate)


def _base_text(base: BaseModelRef) -> str:
    assert base.name is not None
    return f"{base.name}@{base.revision}" if base.revision else base.name


def _repeated_note(refs: Sequence[str], versions: Sequence[AdapterVersion]) -> str | None:
    """Combining one version with itself is allowed (its weights add up) but is more often
    a slip, such as my-lora@prod next to the version prod points at."""
    given: dict[str, list[str]] = {}
    for ref, version in zip(refs, versions, strict=True):
        given.setdefault(version.ref, []).append(ref)
    twice = {ref: names for ref, names in given.items() if len(names) > 1}
    if not twice:
        return None
    shown = "; ".join(f"{ref} (given as {', '.join(names)})" for ref, names in twice.items())
    return f"the same version is combined more than once: {shown}; its weights add up"


def combine_versions(
    store: Store,
    refs: Sequence[str],
    spec: CombineSpec,
    destination: Destination,
    *,
    allow_different_bases: bool = False,
    progress: Progress | None = None,
) -> DeriveResult:
    versions = [store.resolve(ref) for ref in refs]
    derived = derive_combine(
        store, refs, versions, spec, allow_different_bases=allow_different_bases,
        progress=progress,
    )  # fmt: skip
    return _store(store, derived, destination, progress)


def derive_combine(
    store: Store,
    refs: Sequence[str],
    versions: Sequence[AdapterVersion],
    spec: CombineSpec,
    *,
    allow_different_bases: bool = False,
    progress: Progress | None = None,
) -> Derived:
    """Combine resolved ``versions`` (given as ``refs``) whose blobs ``store`` holds."""
    from registry.ops.combine import combine

    base, differences = (
        shared_base(versions, allow_different_bases) if versions else (BaseModelRef(None), [])
    )
    produced = combine(
        [parent_tensors(store, v) for v in versions],
        spec,
        labels=[v.ref for v in versions],
        base_model=base.name,
        revision=base.revision,
        progress=progress,
    )
    fault_point("combine.computed")
    repeated = _repeated_note(refs, versions)
    if repeated:
        produced = replace(produced, notes=(repeated, *produced.notes))
    parameters = dict(produced.parameters)
    if differences:
        parameters["different_bases"] = differences
    lineage = Lineage(
        operation="combine",
        parents=tuple(
            ParentRef(v.name, v.version, v.digest, w)
            for v, w in zip(versions, spec.weights, strict=True)
        ),
        parameters=parameters,
        tool_version=_tool_version(),
    )
    return Derived(produced, lineage, base)


def resize_version(
    store: Store,
    ref: str,
    rank: int,
    destination: Destination,
    *,
    progress: Progress | None = None,
) -> DeriveResult:
    derived = derive_resize(store, store.resolve(ref), rank, progress=progress)
    return _store(store, derived, destination, progress)


def derive_resize(
    store: Store, version: AdapterVersion, rank: int, *, progress: Progress | None = None
) -> Derived:
    from registry.ops.resize import resize

    base = version.base_model
    produced = resize(
        parent_tensors(store, version),
        rank,
        base_model=base.name,
        revision=base.revision,
        progress=progress,
    )
    lineage = Lineage(
        operation="resize",
        parents=(ParentRef(version.name, version.version, version.digest, None),),
        parameters=produced.parameters,
        tool_version=_tool_version(),
    )
    return Derived(produced, lineage, base)


def extract_version(
    store: Store,
    base: Path,
    tuned: Path,
    rank: int,
    destination: Destination,
    *,
    targets: Sequence[str] = (),
    include_embeddings: bool = False,
    base_name: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> DeriveResult:
    derived = derive_extract(
        base, tuned, rank, targets=targets, include_embeddings=include_embeddings,
        base_name=base_name, seed=seed, progress=progress,
    )  # fmt: skip
    return _store(store, derived, destination, progress)


def derive_extract(
    base: Path,
    tuned: Path,
    rank: int,
    *,
    targets: Sequence[str] = (),
    include_embeddings: bool = False,
    base_name: str | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Derived:
    """A LoRA approximating ``tuned - base``; recorded on the ``base`` weights (``base_path``)."""
    from registry.bases.file_source import fingerprint_directory
    from registry.ops.extract import ExtractSpec, default_base_name, extract

    spec = ExtractSpec(rank, tuple(targets), include_embeddings, seed)
    name = base_name or default_base_name(base)
    produced = extract(Path(base), Path(tuned), spec, base_model=name, progress=progress)
    parameters = dict(produced.parameters)
    parameters["tuned_fingerprint"] = fingerprint_directory(tuned).content
    lineage = Lineage(
        operation="extract",
        parents=(),
        parameters=parameters,
        tool_version=_tool_version(),
    )
    return Derived(produced, lineage, BaseModelRef(name), Path(base))


def _store(
    store: Store, derived: Derived, destination: Destination, progress: Progress | None
) -> DeriveResult:
    return store_produced(
        store,
        derived.produced,
        derived.lineage,
        destination,
        base=derived.base,
        base_path=derived.base_path,
        progress=progress,
    )
