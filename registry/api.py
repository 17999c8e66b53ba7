"""``Registry``: the facade that deployment code and the CLI call."""

from __future__ import annotations

import builtins
import dataclasses
import importlib
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from registry.check import Check
from registry.errors import ArgumentError, RegistryError
from registry.facade.lifecycle_methods import LifecycleMethods
from registry.facade.operator_methods import OperatorMethods
from registry.facade.trust_methods import TrustMethods
from registry.lifecycle.aliases import push_gate
from registry.lifecycle.selection import row_id
from registry.progress import Progress
from registry.store.blob_store import BlobBackend
from registry.store.export import export_version
from registry.store.home import find_home, init_home, mark_home, refuse_url, url_scheme
from registry.store.list_query import ListQuery
from registry.store.push import PushRequest, push
from registry.store.refs import Ref
from registry.store.results import (
    AdapterVersion,
    BaseModelRecord,
    BaseRelation,
    ExportResult,
    GcResult,
    MultiPushResult,
    PushResult,
    VerifyReport,
)
from registry.store.store import Store
from registry.store.verify import verify_version

if TYPE_CHECKING:
    from registry.bases.compat import CompatReport
    from registry.bases.target import BaseTarget
    from registry.hub import HubSync
    from registry.runtime.loader import LoadedAdapter, LoadMode
    from registry.security.signing import Signature
    from registry.security.tokens import NewToken, TokenInfo, TokenRevocation
    from registry.store.blob_copy import BlobCopyResult
    from registry.store.materialize import Materialized

# Openers of registry URLs by scheme (http, https), installed by ``registry.remote`` when the
# package is imported: the remote client builds on this class, so this module cannot import it.
URL_OPENERS: dict[str, Callable[..., Registry]] = {}
URL_OPENER_MODULES = {"http": "registry.remote", "https": "registry.remote"}


class Registry(LifecycleMethods, OperatorMethods, TrustMethods):
    """An open registry: a catalog plus a blob store, found like git finds a repo.

    >>> reg = Registry.open()                       # doctest: +SKIP
    >>> reg.push("out/my-lora", evals={"accuracy": 0.93})  # doctest: +SKIP
    """

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
        new_catalog: bool = False,
        token: str | None = None,
    ) -> Registry:
        """Open the registry at ``path``, or the one found from the environment.

        ``create=True`` makes a new registry at ``path`` when there is none (and its
        catalog when missing, unless blobs are there: ``new_catalog=True`` to start an
        empty catalog over them). ``database_url`` overrides ``ADAPTERS_DATABASE_URL``.
        A home whose catalog is missing or empty is otherwise an error. A URL
        ``http(s)://HOST:PORT`` (or ``ADAPTERS_URL`` when no path is given) opens a registry
        server with ``token`` (default ``ADAPTERS_TOKEN``): the same methods, run through its
        HTTP API.
        """

        target = str(path) if path is not None else os.environ.get("ADAPTERS_URL", "")
        refuse_url(target, "" if path is not None else "ADAPTERS_URL")
        scheme = url_scheme(target)
        if scheme in URL_OPENER_MODULES and scheme not in URL_OPENERS:
            # The remote client builds on this class, so it is found by name, not imported.
            importlib.import_module(URL_OPENER_MODULES[scheme])
        if scheme in URL_OPENERS:
            return URL_OPENERS[scheme](target, token=token)
        home = init_home(Path(path)) if path is not None and create else find_home(path)
        store = Store.open(home, database_url, create=create, new_catalog=new_catalog)
        mark_home(home)
        return cls(store)

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
        base_module: Any = None,
        progress: Progress | None = None,
        exhaustive_base: bool = False,
        locate_base: bool = True,
    ) -> PushResult:
        """Store an adapter directory as a new version (or find the identical one).

        The base model's weights are fingerprinted and recorded, so that loading onto other
        weights is refused later: ``base_path``, else ``base_module`` (a live torch module), else
        the local directory or Hub id (in the local HF cache, offline) the adapter's config
        names, unless a base of that name is already recorded. When none is found the version's
        base is unverified and ``PushResult.base_unverified`` says why. ``exhaustive_base`` also
        records each base tensor's full-content digest. ``requires`` maps package names to PEP
        440 specifiers checked when the adapter is loaded. ``locate_base=False``: never look
        for the base by name on this machine (a server does not, for its clients' pushes).
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
            exhaustive_base=exhaustive_base,
            locate_base=locate_base,
            base_quantization=base_quantization,
            requires=dict(requires or {}),
            base_target=_module_target(base_module) if base_module is not None else None,
        )
        gate = push_gate(self.home.root, alias) if alias else None
        result = push(self.store, request, progress, gate)
        if result.created or not (request.alias or request.evals or request.tags):
            return result
        # Identical content already stored: its annotations go onto that version, through
        # the same gates (a GateError applies nothing).
        from registry.lifecycle.repeat_push import apply_annotations
        from registry.store.scores import NewScore

        scores = [
            NewScore(metric, float(value), request.eval_dataset, request.eval_split)
            for metric, value in request.evals.items()
        ]
        applied = apply_annotations(
            self.store, result.version, alias=request.alias, evals=scores, tags=request.tags
        )
        return dataclasses.replace(
            result,
            version=self.store.catalog.get_by_id(row_id(self.catalog, result.version)),
            applied_alias=applied.alias,
            applied_evals=applied.evals,
            applied_tags=applied.tags,
        )

    def push_all(
        self,
        directory: str | Path,
        *,
        name: str | None = None,
        name_template: str | None = None,
        **options: Any,
    ) -> MultiPushResult:
        """Store every adapter of a multi-adapter directory, each as its own name.

        PEFT's ``save_pretrained`` of several adapters writes the default one at the top and
        each other in a subfolder named after it. The top one is stored as ``name`` (default:
        the directory's name), a subfolder's as ``name_template`` (``"{name}/{adapter}"``)
        makes it. Each is one ``push`` with ``options`` (``push``'s keywords but ``alias``,
        which names one version); one refused stops no other, and every name is checked
        before the first is stored.
        """
        from registry.store.push import default_name
        from registry.store.push_all import plan_all_adapters
        from registry.store.results import AdapterPushOutcome

        if options.get("alias") is not None:
            raise ArgumentError("an alias names one version; push all adapters without it")
        root = Path(directory)
        plan = plan_all_adapters(root, name or default_name(root), name_template)
        outcomes: builtins.list[AdapterPushOutcome] = []
        for item in plan:
            try:
                pushed = self.push(item.directory, name=item.name, **options)
            except RegistryError as exc:  # this adapter is refused; the others still go in
                outcomes.append(AdapterPushOutcome(item.subfolder, item.name, error=str(exc)))
            else:
                outcomes.append(AdapterPushOutcome(item.subfolder, item.name, pushed))
        return MultiPushResult(root, tuple(outcomes))

    # -- finding -----------------------------------------------------------------

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

    def list_pages(
        self, query: ListQuery | None = None, /, **fields: Any
    ) -> Iterator[builtins.list[AdapterVersion]]:
        """``list``'s versions in order, a page (up to 1000) at a time: memory stays flat
        however many match, and the first page comes before the last is read. Each page
        is read on its own, so versions pushed meanwhile may appear (none twice)."""
        return self.catalog.version_pages(ListQuery.of(query, fields).compile())

    def count(self, query: ListQuery | None = None, /, **fields: Any) -> int:
        """How many versions ``list`` with the same filters would return without a limit."""
        return self.catalog.count_matching(ListQuery.of(query, fields).compile())

    # -- checking and getting back -------------------------------------------------

    def verify(
        self,
        ref: str | Ref,
        *,
        base: str | None = None,
        allow_unverified_base: bool = False,
        exhaustive: bool = False,
    ) -> VerifyReport:
        """Re-hash every blob, recompute the digest, re-validate config and tensors, and
        check each signature (pass: a trusted key; warn: an untrusted one; fail: invalid).
        The ``base recorded`` check warns when no fingerprint of the base trained on exists.

        With ``base`` (a directory, a recorded base name, or a Hub id in the local cache)
        the compatibility checks against that base are added; the weights check fails when
        the base trained on was never fingerprinted, unless ``allow_unverified_base``.
        ``exhaustive`` compares the full content of every tensor of a base on disk, not
        only the samples (docs/fingerprint.md).
        """
        from registry.security.signing import with_signature_checks
        from registry.store.base_records import base_state_check

        version = self.get(ref)
        report = verify_version(version, self.blobs)
        report = with_signature_checks(report, self.catalog, self.home.root, version)
        checks = (*report.checks, base_state_check(self.catalog, version))
        if base is not None:
            from registry.store.base_records import compat_for_target, resolve_target

            target = resolve_target(base, self.catalog, exhaustive=exhaustive)
            compat = compat_for_target(
                self.store, version, target, allow_unverified_base=allow_unverified_base
            )
            checks += tuple(Check(f"base {c.name}", c.status, c.detail) for c in compat.checks)
        return VerifyReport(report.ref, report.digest, checks)

    def sign(self, ref: str | Ref, key: str) -> Signature:
        """Sign a version with ``key`` (a key name from ``adapters key generate``, or a PEM
        file) after verifying it; signing again with the same key returns the signature."""
        from registry.security.signing import sign

        return sign(self.store, self.get(ref), key)

    # -- server access tokens ---------------------------------------------------------

    def create_token(
        self,
        name: str,
        role: str,
        *,
        namespace: str | None = None,
        expires: str | None = None,
    ) -> NewToken:
        """A new access token for ``adapters server``; its secret is in the result only.

        ``role``: reader, writer, maintainer or admin; ``namespace`` limits it to NS/*
        names; ``expires``: 30d, 12h, 2w or an ISO date (default: never)."""
        from registry.security.tokens import create_token, parse_expiry

        return create_token(
            self.catalog.engine, name, role, namespace=namespace, expires_at=parse_expiry(expires)
        )

    def tokens(self) -> builtins.list[TokenInfo]:
        """Every access token, without secrets."""
        from registry.security.tokens import list_tokens

        return list_tokens(self.catalog.engine)

    def revoke_token(self, name: str) -> TokenRevocation:
        """Revoke the token ``name`` at once; ``changed`` is False when it already was."""
        from registry.security.tokens import revoke_token

        return revoke_token(self.catalog.engine, name)

    # -- base models ----------------------------------------------------------------

    def add_base(
        self,
        source: str | Path,
        *,
        name: str | None = None,
        version: str | None = None,
        quantization: str | None = None,
        exhaustive: bool = False,
    ) -> BaseModelRecord:
        """Fingerprint a base model (a directory, or HUB_ID[@REV] from the local HF cache)
        and record it; ``exhaustive`` also records each tensor's full-content digest (adding
        them to a record of the same weights)."""
        from registry.store.base_records import add_base

        return add_base(
            self.catalog,
            str(source),
            name=name,
            version=version,
            quantization=quantization,
            exhaustive=exhaustive,
        )

    def bases(self) -> builtins.list[BaseModelRecord]:
        from registry.store.catalog.base_rows import list_bases

        return list_bases(self.catalog)

    def base_relations(self) -> builtins.list[BaseRelation]:
        """Every recorded relation between base models (``quantized-from``, ``equivalent``)."""
        from registry.store.catalog.base_rows import relations

        return relations(self.catalog)

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

    def check_compat(
        self,
        ref: str | Ref,
        base: Any,
        *,
        allow_unverified_base: bool = False,
        exhaustive: bool = False,
    ) -> CompatReport:
        """Compatibility of a version with a base: a torch module, a directory, a recorded
        base name, a Hub id in the local cache, or a ``BaseTarget`` already read. The weights
        check fails when the base trained on was never fingerprinted, unless
        ``allow_unverified_base``; ``exhaustive`` compares every tensor's full content where the
        recorded base has its digests."""
        from registry.bases.target import BaseTarget, target_from_module
        from registry.store.base_records import compat_for_target, resolve_target

        version = self.get(ref)
        if isinstance(base, BaseTarget):
            target = base  # read once by the caller (a server checking many adapters)
        elif isinstance(base, str | Path):
            target = resolve_target(str(base), self.catalog, exhaustive=exhaustive)
        else:
            target = target_from_module(base, digest=exhaustive)
        return compat_for_target(
            self.store, version, target, allow_unverified_base=allow_unverified_base
        )

    def load(
        self,
        ref: str | Ref,
        model: Any,
        *,
        strict: bool = True,
        mode: LoadMode = "auto",
        reverify: bool = False,
        allow_unverified_base: bool = False,
        exhaustive: bool = False,
        merge: bool = True,
    ) -> LoadedAdapter:
        """Apply a version to ``model`` after checking it fits; see ``registry.runtime.loader``.

        Each blob is hashed on the first load in this process and again only when its file
        changed (size, mtime or inode) or ``reverify`` is true. Likewise the model's
        fingerprint is kept between loads while none of its tensors was replaced or written
        in place (``registry.runtime.live_target``); ``reverify`` takes it again.

        Native mode merges the adapter into the weights (nothing extra per forward; a swap
        rewrites every adapted weight). ``merge=False`` (LoRA on Linear / Conv1D layers)
        leaves the weights untouched and adds the low-rank branch at forward time exactly
        as PEFT's LoRA layers do: swaps cost almost nothing, every forward pays the branch.

        Raises ``BaseModelMismatchError`` (with the ``CompatReport``) before touching the
        model when a check fails and ``strict`` is true, including when the base the version
        was trained on was never fingerprinted (unless ``allow_unverified_base``), or, with
        ``exhaustive``, when a tensor the adapter binds to differs in full content from the
        recorded base (recorded with ``adapters base add --exhaustive``);
        ``IntegrityError`` naming the file when a stored file or the manifest changed;
        ``SignatureError`` when policy.json has ``"load": {"require_signature": true}`` and
        no trusted key signed the version.
        """
        from registry.runtime.loader import load

        return load(
            self.store,
            self.get(ref),
            model,
            strict=strict,
            mode=mode,
            reverify=reverify,
            allow_unverified_base=allow_unverified_base,
            exhaustive=exhaustive,
            merge=merge,
        )

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

    def materialize(self, ref: str | Ref, *, rehash: bool = False) -> Path:
        """A verified, read-only PEFT directory for the version in the home's cache
        (``cache/materialized/<digest>/``), built once, then reused after a check of file
        names and sizes (``rehash``: re-hash them). Follows ``load.require_signature``."""
        from registry.runtime.materialize import materialize_version

        return materialize_version(self.store, self.get(ref), rehash=rehash)

    def materialize_into(
        self,
        refs: Sequence[str | Ref] | Mapping[str, str | Ref],
        into: str | Path,
        *,
        copy: bool = False,
        rehash: bool = False,
    ) -> builtins.list[Materialized]:
        """Materialize each version and give it a folder in ``into``: a symlink into the
        cache (or a copy with ``copy``) named after the adapter (``team/bot`` ->
        ``team--bot``), or after the mapping's keys (folder -> ref)."""
        from registry.runtime.materialize import materialize_versions

        pairs = list(refs.items()) if isinstance(refs, Mapping) else [(None, r) for r in refs]
        if not pairs:
            raise ArgumentError("give at least one adapter reference to materialize")
        versions = [(folder, self.get(ref)) for folder, ref in pairs]
        return materialize_versions(self.store, versions, Path(into), copy=copy, rehash=rehash)


    def gc(self, *, dry_run: bool = False, trust_catalog: bool = False) -> GcResult:
        """Delete blobs that no version references and no push in progress holds.

        Refused (``CatalogMismatchError``) when the catalog does not look like the blob
        store's own, unless ``trust_catalog``."""
        from registry.store.gc import collect

        return collect(self.store, dry_run=dry_run, trust_catalog=trust_catalog)

    def copy_blobs(
        self,
        source: str | None,
        target: str | None,
        *,
        progress: Progress | None = None,
    ) -> BlobCopyResult:
        """Copy every blob from ``source`` to ``target`` (paths, relative ones from the
        current directory, or ``s3://``, ``gs://``, ``az://`` URLs; None is this registry's
        blob store), verified and resumable."""
        from registry.store.blob_config import absolute_location, open_blob_backend
        from registry.store.blob_copy import copy_blobs

        def store(url: str | None) -> BlobBackend:
            if url is None:
                return self.blobs
            return open_blob_backend(absolute_location(url), self.home)

        return copy_blobs(store(source), store(target), self.store.tmp_dir, progress)

def _module_target(module: Any) -> BaseTarget:
    from registry.bases.target import BaseTarget, target_from_module

    if isinstance(module, BaseTarget):
        return module  # read already (a client's fingerprint, checked by the server)
    return target_from_module(module)
