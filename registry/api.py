"""``Registry``: the facade that deployment code and the CLI call."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from registry.check import Check
from registry.lifecycle import aliases, annotate, audit, evals, status
from registry.lifecycle.aliases import push_gate
from registry.lifecycle.policy import parse_requirement
from registry.lifecycle.results import (
    AliasChange,
    AuditEvent,
    Comparison,
    DescriptionChange,
    EvalRecord,
    GateReport,
    LineageReport,
    Removal,
    StatusChange,
    TagChange,
)
from registry.progress import Progress
from registry.store.blobs import BlobStore
from registry.store.catalog.catalog import Catalog
from registry.store.export import export_version
from registry.store.home import RegistryHome, find_home, init_home
from registry.store.list_query import ListQuery
from registry.store.push import PushRequest, push
from registry.store.refs import Ref
from registry.store.results import (
    AdapterVersion,
    BaseModelRecord,
    BaseRelation,
    ExportResult,
    GcResult,
    PushResult,
    VerifyReport,
)
from registry.store.store import Store
from registry.store.verify import verify_version

if TYPE_CHECKING:
    from registry.bases.compat import CompatReport
    from registry.hub import HubSync
    from registry.ops.methods import CombineSpec
    from registry.runtime.derive import DeriveResult
    from registry.runtime.loader import LoadedAdapter, LoadMode
    from registry.runtime.merge_into_base import MergeResult
    from registry.security.signing import Signature


class Registry:
    """An open registry: a catalog plus a blob store, found like git finds a repo.

    >>> reg = Registry.open()                       # doctest: +SKIP
    >>> reg.push("out/my-lora", evals={"accuracy": 0.93})  # doctest: +SKIP
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @property
    def home(self) -> RegistryHome:
        return self.store.home

    @property
    def catalog(self) -> Catalog:
        return self.store.catalog

    @property
    def blobs(self) -> BlobStore:
        return self.store.blobs

    @property
    def hub(self) -> HubSync:
        """Hugging Face Hub sync: ``hub.push(ref, repo_id)``, ``hub.pull("org/repo@v3")``,
        ``hub.status(ref)`` (see ``registry.hub`` and docs/hub.md)."""
        from registry.hub import HubSync

        return HubSync(self.store)

    @classmethod
    def open(
        cls,
        path: str | Path | None = None,
        *,
        database_url: str | None = None,
        create: bool = False,
    ) -> Registry:
        """Open the registry at ``path``, or the one found from the environment.

        ``create=True`` makes a new registry at ``path`` when there is none.
        ``database_url`` overrides ``ADAPTERS_DATABASE_URL``.
        """
        home = init_home(Path(path)) if path is not None and create else find_home(path)
        return cls(Store.open(home, database_url))

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- storing -----------------------------------------------------------------

    def push(
        self,
        directory: str | Path,
        *,
        name: str | None = None,
        version: str | None = None,
        base: str | None = None,
        data: Sequence[str | Path] = (),
        data_hashes: Sequence[str] = (),
        evals: Mapping[str, float] | None = None,
        eval_dataset: str = "",
        eval_split: str = "",
        tags: Mapping[str, str] | None = None,
        alias: str | None = None,
        convert_pickle: bool = False,
        base_path: str | Path | None = None,
        base_quantization: str | None = None,
        requires: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> PushResult:
        """Store an adapter directory as a new version (or find the identical one).

        ``base_path`` names the base model's weights: they are fingerprinted and
        recorded, so loading onto other weights is refused later. ``requires`` maps
        package names to PEP 440 specifiers checked when the adapter is loaded.
        """
        request = PushRequest(
            directory=Path(directory),
            name=name,
            version=version,
            base=base,
            data=tuple(Path(p) for p in data),
            data_hashes=tuple(data_hashes),
            evals=dict(evals or {}),
            eval_dataset=eval_dataset,
            eval_split=eval_split,
            tags=dict(tags or {}),
            alias=alias,
            convert_pickle=convert_pickle,
            base_path=Path(base_path) if base_path is not None else None,
            base_quantization=base_quantization,
            requires=dict(requires or {}),
        )
        gate = push_gate(self.home.root, alias) if alias else None
        return push(self.store, request, progress, gate)

    # -- finding -----------------------------------------------------------------

    def get(self, ref: str | Ref) -> AdapterVersion:
        """Resolve a reference (see ``registry.store.refs``) to one version.

        A yanked version resolves only when pinned exactly (or through an alias), and
        then with a ``YankedVersionWarning``.
        """
        return self.store.resolve(ref)

    def list(self, query: ListQuery | None = None, /, **fields: Any) -> list[AdapterVersion]:
        """Versions matching every given filter: a ``ListQuery``, or its fields as keywords
        (``reg.list(base="meta-llama/Llama-3.1-8B", where=["accuracy>=0.9"])``).

        ``name`` is a glob; ``base`` a base NAME[@REVISION] or fingerprint sha256:HEX;
        ``method`` a method such as lora; ``alias`` an alias that points at the version;
        ``tags`` maps keys to a value (or None: the key is present); ``data`` a training
        data digest sha256:HEX or a file/directory to digest; ``where`` conditions such
        as ``"accuracy@gsm8k>=0.9"`` on the latest evals (ANDed); ``status`` "active" or
        "yanked". ``sort``: name, version, created (newest first) or METRIC[@DATASET]
        (best first); ``reverse`` flips it; ``limit``: at most that many versions.

        Raises ``ArgumentError`` (``InvalidNameError`` when only names are wrong) naming
        every bad filter, and ``TypeError`` for an unknown keyword.

        Without ``limit`` every match is returned (the CLI pages, this does not); with
        one, only about that many rows are read, however large the catalog.
        """
        return self.catalog.list_versions(ListQuery.of(query, fields).compile())

    def count(self, query: ListQuery | None = None, /, **fields: Any) -> int:
        """How many versions ``list`` with the same filters would return without a limit."""
        return self.catalog.count_matching(ListQuery.of(query, fields).compile())

    # -- checking and getting back -------------------------------------------------

    def verify(self, ref: str | Ref, *, base: str | None = None) -> VerifyReport:
        """Re-hash every blob, recompute the digest, re-validate config and tensors, and
        check each signature (pass: a trusted key; warn: an untrusted one; fail: invalid).

        With ``base`` (a directory, a recorded base name, or a Hub id in the local cache)
        the compatibility checks against that base are added.
        """
        from registry.security.signing import with_signature_checks

        version = self.get(ref)
        report = verify_version(version, self.blobs)
        report = with_signature_checks(report, self.catalog, self.home.root, version)
        if base is None:
            return report
        from registry.store.base_records import compat_for_target, resolve_target

        compat = compat_for_target(self.store, version, resolve_target(base, self.catalog))
        checks = report.checks + tuple(
            Check(f"base {c.name}", c.status, c.detail) for c in compat.checks
        )
        return VerifyReport(report.ref, report.digest, checks)

    def sign(self, ref: str | Ref, key: str) -> Signature:
        """Sign a version with ``key`` (a key name from ``adapters key generate``, or a PEM
        file) after verifying it; signing again with the same key returns the signature."""
        from registry.security.signing import sign

        return sign(self.store, self.get(ref), key)

    # -- base models ----------------------------------------------------------------

    def add_base(
        self,
        source: str | Path,
        *,
        name: str | None = None,
        version: str | None = None,
        quantization: str | None = None,
    ) -> BaseModelRecord:
        """Fingerprint a base model (a directory, or HUB_ID[@REV] from the local HF cache)
        and record it."""
        from registry.store.base_records import add_base

        return add_base(
            self.catalog, str(source), name=name, version=version, quantization=quantization
        )

    def bases(self) -> builtins.list[BaseModelRecord]:
        from registry.store.catalog.base_rows import list_bases

        return list_bases(self.catalog)

    def link_bases(self, source: str, target: str, relation: str) -> BaseRelation:
        """Record that base ``source`` is ``quantized-from`` or ``equivalent`` to ``target``."""
        from registry.store.actor import current_actor
        from registry.store.catalog.base_rows import get_base, link_bases

        return link_bases(
            self.catalog,
            get_base(self.catalog, source),
            get_base(self.catalog, target),
            relation,
            current_actor(),
        )

    # -- compatibility and loading ------------------------------------------------------

    def check_compat(self, ref: str | Ref, base: Any) -> CompatReport:
        """Compatibility of a version with a base: a torch module, a directory, a recorded
        base name, or a Hub id in the local cache."""
        from registry.bases.target import target_from_module
        from registry.store.base_records import compat_for_target, resolve_target

        version = self.get(ref)
        if isinstance(base, str | Path):
            target = resolve_target(str(base), self.catalog)
        else:
            target = target_from_module(base)
        return compat_for_target(self.store, version, target)

    def load(
        self, ref: str | Ref, model: Any, *, strict: bool = True, mode: LoadMode = "auto"
    ) -> LoadedAdapter:
        """Apply a version to ``model`` after checking it fits; see ``registry.runtime.loader``.

        Raises ``BaseModelMismatchError`` (with the ``CompatReport``) before touching the
        model when a check fails and ``strict`` is true; ``IntegrityError`` naming the file
        when a stored file or the manifest changed; ``SignatureError`` when policy.json has
        ``"load": {"require_signature": true}`` and no trusted key signed the version.
        """
        from registry.runtime.loader import load

        return load(self.store, self.get(ref), model, strict=strict, mode=mode)

    def export(
        self,
        ref: str | Ref,
        directory: str | Path,
        *,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> ExportResult:
        """Write the version's files (a PEFT directory for PEFT adapters) to ``directory``."""
        return export_version(
            self.get(ref), self.blobs, Path(directory), overwrite=overwrite, progress=progress
        )

    # -- lifecycle ------------------------------------------------------------------

    def record_eval(
        self,
        ref: str | Ref,
        scores: Mapping[str, float],
        *,
        dataset: str = "",
        split: str = "",
        notes: str = "",
    ) -> EvalRecord:
        """Append eval scores to a version (earlier records are kept, never overwritten)."""
        return evals.record_eval(
            self.catalog, ref, scores, dataset=dataset, split=split, notes=notes
        )

    def set_tags(
        self,
        ref: str | Ref,
        tags: Mapping[str, str] | None = None,
        *,
        remove: Sequence[str] = (),
    ) -> TagChange:
        """Set tags (new keys added, existing values replaced) and remove the keys in
        ``remove`` on the version ``ref`` resolves to; audited, all or nothing."""
        return annotate.set_tags(self.catalog, ref, tags, remove=remove)

    def describe(self, ref: str | Ref, text: str) -> DescriptionChange:
        """Set the description of the version ``ref`` resolves to ("" clears it); audited."""
        return annotate.describe(self.catalog, ref, text)

    def set_alias(
        self, ref: str | Ref, alias: str, *, requires: Sequence[str] = (), note: str = ""
    ) -> AliasChange:
        """Move ``alias`` to ``ref`` atomically, once the policy's gates and ``requires``
        (``"accuracy@gsm8k>=0.93"``, ``"verify"``, ``"base-fingerprint"``) are met.

        Raises ``GateError`` naming every unmet requirement.
        """
        return aliases.set_alias(
            self.store,
            ref,
            alias,
            requires=[parse_requirement(r) for r in requires],
            note=note,
        )

    def check_alias(
        self, ref: str | Ref, alias: str, *, requires: Sequence[str] = ()
    ) -> GateReport:
        """The gates ``set_alias`` would check, evaluated without moving the alias."""
        return aliases.check_alias(
            self.store,
            ref,
            alias,
            [parse_requirement(r) for r in requires],
        )

    def remove_alias(self, name: str, alias: str, *, note: str = "") -> AliasChange:
        return aliases.remove_alias(self.catalog, name, alias, note=note)

    def alias_history(self, name: str, alias: str | None = None) -> builtins.list[AliasChange]:
        """Every move of the aliases of ``name`` (or of one alias), oldest first."""
        return aliases.alias_history(self.catalog, name, alias)

    def yank(self, ref: str | Ref, reason: str) -> StatusChange:
        """Yank an exact version (PEP 592): skipped by bare names and specifiers."""
        return status.yank(self.catalog, ref, reason)

    def unyank(self, ref: str | Ref) -> StatusChange:
        return status.unyank(self.catalog, ref)

    def remove(self, ref: str | Ref, *, force: bool = False, reason: str = "") -> Removal:
        """Delete an exact version from the catalog; refused while an alias points at it
        unless ``force``. Its blobs are freed by ``gc``."""
        return status.remove(self.catalog, ref, force=force, reason=reason)

    def gc(self, *, dry_run: bool = False) -> GcResult:
        """Delete blobs that no version references and no push in progress holds."""
        from registry.store.gc import collect

        return collect(self.store, dry_run=dry_run)

    def log(
        self,
        ref: str | Ref | None = None,
        *,
        actions: Sequence[str] = (),
        actor: str | None = None,
        limit: int | None = None,
    ) -> builtins.list[AuditEvent]:
        """Audit events, oldest first (``limit``: the newest ``limit`` of them)."""
        return audit.audit_log(self.catalog, ref, actions=actions, actor=actor, limit=limit)

    def record_event(
        self,
        action: str,
        name: str | None = None,
        version: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Append an audit event for a change made outside the catalog (e.g. hub sync)."""
        from registry.lifecycle.transactions import record_event
        from registry.store.actor import current_actor

        record_event(
            self.catalog.engine, current_actor(), action, name, version, dict(details or {})
        )

    def lineage(self, ref: str | Ref, *, depth: int = 64) -> LineageReport:
        """Ancestors and descendants of a version through combine/merge/extract lineage."""
        from registry.lifecycle.lineage import lineage

        return lineage(self.catalog, self.get(ref), depth=depth)

    def compare(self, a: str | Ref, b: str | Ref) -> Comparison:
        """Evals side by side, manifest and config differences and, for two LoRA
        adapters, the cosine similarity of their weight updates per module."""
        from registry.lifecycle.compare import compare_versions

        return compare_versions(self.get(a), self.get(b), self.blobs)

    # -- operators: combine, merge into base, resize, extract ---------------------------

    def combine(
        self,
        refs: Sequence[str | Ref],
        spec: CombineSpec | None = None,
        *,
        name: str,
        allow_different_bases: bool = False,
        version: str | None = None,
        alias: str | None = None,
        tags: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        **parameters: Any,
    ) -> DeriveResult:
        """Combine versions into a new one, recorded with its lineage; see ``registry.ops``.

        ``spec`` is a ``registry.ops.methods.CombineSpec``; or give its fields as keywords:
        ``method`` ``cat`` (exact), ``svd`` (exact sum truncated to ``rank``), or ``linear``,
        ``ties``, ``dare_linear``, ``dare_ties``, ``magnitude_prune`` (dense per module, then
        rank ``rank``), ``weights`` (default 1 each), ``rank``, ``density``, ``seed``,
        ``majority_sign``. IA3 adapters combine with ``linear``.
        """
        from registry.ops.methods import CombineSpec
        from registry.runtime.derive import Destination, combine_versions

        if spec is None:
            spec = CombineSpec.build(count=len(refs), **parameters)
        elif parameters:
            raise TypeError(f"give a CombineSpec or its fields, not both: {sorted(parameters)}")
        return combine_versions(
            self.store,
            [str(r) for r in refs],
            spec,
            Destination(name, version, alias, dict(tags or {})),
            allow_different_bases=allow_different_bases,
            progress=progress,
        )

    def merge_into_base(
        self,
        ref: str | Ref,
        base: str | Path,
        out: str | Path,
        *,
        force: bool = False,
        max_shard_bytes: int | None = None,
        overwrite: bool = False,
        progress: Progress | None = None,
    ) -> MergeResult:
        """Write the base checkpoint in ``base`` with the version folded in to ``out``,
        streaming tensor by tensor; refuses a base that does not fit unless ``force``."""
        from registry.runtime.merge_into_base import merge_version

        return merge_version(
            self.store,
            str(ref),
            Path(base),
            Path(out),
            force=force,
            max_shard_bytes=max_shard_bytes,
            overwrite=overwrite,
            progress=progress,
        )

    def resize(
        self,
        ref: str | Ref,
        rank: int,
        *,
        name: str,
        version: str | None = None,
        alias: str | None = None,
        tags: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> DeriveResult:
        """A new version holding the best rank-``rank`` approximation of ``ref``."""
        from registry.runtime.derive import Destination, resize_version

        return resize_version(
            self.store,
            str(ref),
            rank,
            Destination(name, version, alias, dict(tags or {})),
            progress=progress,
        )

    def extract(
        self,
        base: str | Path,
        tuned: str | Path,
        rank: int,
        *,
        name: str,
        targets: Sequence[str] = (),
        include_embeddings: bool = False,
        base_name: str | None = None,
        seed: int = 0,
        version: str | None = None,
        alias: str | None = None,
        tags: Mapping[str, str] | None = None,
        progress: Progress | None = None,
    ) -> DeriveResult:
        """A LoRA of rank ``rank`` approximating ``tuned - base`` (two model directories)."""
        from registry.runtime.derive import Destination, extract_version

        return extract_version(
            self.store,
            Path(base),
            Path(tuned),
            rank,
            Destination(name, version, alias, dict(tags or {})),
            targets=targets,
            include_embeddings=include_embeddings,
            base_name=base_name,
            seed=seed,
            progress=progress,
        )
