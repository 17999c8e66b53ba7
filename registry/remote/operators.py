"""Operators through a registry server: the tensor work runs here, on verified blobs from
the local cache, and new versions go back to the server with their lineage.

``combine``, ``resize`` and ``extract`` compute exactly what a local run computes (the same
``registry.runtime.derive`` functions), write the PEFT directory into the cache's staging
area and push it with the lineage and base a local run would record; the server checks the
parents and records the same manifest, so the digest is the same as a local run's.
``merge_into_base`` writes a merged model here and pushes nothing. Base weights named by
``base_path`` (or a live ``base_module``) are fingerprinted here and sent as a record.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry import errors
from registry.api import Registry
from registry.progress import Progress
from registry.remote import wire
from registry.remote.upload import Upload
from registry.store.manifest import BaseModelRef
from registry.store.refs import Ref
from registry.store.results import AdapterVersion, BaseModelRecord, PushResult

if TYPE_CHECKING:
    import httpx2

    from registry.bases.target import BaseTarget
    from registry.ops.methods import CombineSpec
    from registry.runtime.derive import Derived, DeriveResult, Destination
    from registry.runtime.merge_into_base import MergeResult
    from registry.store.base_records import KnownBase
    from registry.store.store import Store


class RemoteOperators(Registry):
    """The operator methods of ``RemoteRegistry`` (transport in ``registry.remote.client``)."""

    # -- provided by the client ---------------------------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx2.Response:
        raise NotImplementedError

    def _fetch(self, version: AdapterVersion) -> Store:
        raise NotImplementedError

    def _cache_store(self) -> Store:
        raise NotImplementedError

    def _known_base(self, version: AdapterVersion) -> KnownBase:
        """What the server's catalog knows of the base ``version`` was trained on, for the
        compatibility checks run here (the local cache has no base records)."""
        from registry.remote.codec import decode
        from registry.store.base_records import KnownBase

        answer = self._send("GET", "/known-base", params={"ref": version.ref})
        return decode(KnownBase, answer.json())

    def _resolve(self, ref: str | Ref) -> AdapterVersion:
        """A version as the server resolves it, without the yanked warning of ``get`` (as
        a local operator resolves its inputs)."""
        from registry.remote.codec import decode

        found = self._send("GET", "/resolve", params={"ref": str(ref)})
        return decode(AdapterVersion, found.json())

    # -- operators ------------------------------------------------------------------------

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
        allow_lineage_outside_namespace: bool = False,
        **parameters: Any,
    ) -> DeriveResult:
        from registry.ops.methods import CombineSpec
        from registry.runtime.derive import Destination, derive_combine

        spec = CombineSpec.for_call(spec, len(refs), parameters)
        destination = Destination(
            name, version, alias, dict(tags or {}), allow_lineage_outside_namespace
        )
        texts = [str(r) for r in refs]
        versions = [self._resolve(r) for r in texts]
        cache = self._fetch_all(versions)
        derived = derive_combine(
            cache, texts, versions, spec, allow_different_bases=allow_different_bases,
            progress=progress,
        )  # fmt: skip
        return self._store_derived(derived, destination, progress)

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
        allow_lineage_outside_namespace: bool = False,
    ) -> DeriveResult:
        from registry.runtime.derive import Destination, derive_resize

        destination = Destination(
            name, version, alias, dict(tags or {}), allow_lineage_outside_namespace
        )
        parent = self._resolve(ref)
        derived = derive_resize(self._fetch(parent), parent, rank, progress=progress)
        return self._store_derived(derived, destination, progress)

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
        from registry.runtime.derive import Destination, derive_extract

        destination = Destination(name, version, alias, dict(tags or {}))
        derived = derive_extract(
            Path(base), Path(tuned), rank, targets=targets,
            include_embeddings=include_embeddings, base_name=base_name, seed=seed,
            progress=progress,
        )  # fmt: skip
        return self._store_derived(derived, destination, progress)

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
        """Merge the version into the base checkpoint here; nothing goes to the server."""
        from registry.runtime.merge_into_base import merge_resolved

        version = self._resolve(ref)
        return merge_resolved(
            self._fetch(version), version, Path(base), Path(out), force=force,
            max_shard_bytes=max_shard_bytes, overwrite=overwrite, progress=progress,
            known_base=self._known_base(version),
        )  # fmt: skip

    # -- pushing what was made here ----------------------------------------------------------

    def _fetch_all(self, versions: Sequence[AdapterVersion]) -> Store:
        cache = self._cache_store()
        for version in versions:
            cache = self._fetch(version)
        return cache

    def _store_derived(
        self, derived: Derived, destination: Destination, progress: Progress | None
    ) -> DeriveResult:
        from registry.runtime.derive import DeriveResult, write_derived

        staging_root = self._cache_store().tmp_dir
        staging_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="derive-", dir=staging_root))
        try:
            directory = write_derived(derived, staging / "adapter")
            base = derived.base
            record = (
                self._client_base(base_path=derived.base_path)
                if derived.base_path is not None
                else None
            )
            upload = Upload.of(directory)
            if not upload.bundled:
                upload.send_each(self._send)
            body = wire.PushBody(
                files=upload.files,
                name=destination.name,
                version=destination.version,
                tags=dict(destination.tags),
                alias=destination.alias,
                lineage=derived.lineage,
                exact_base=base if record is None and base.name else None,
                base=_base_text(base.name, base.revision) if record and base.name else None,
                base_record=record,
                lineage_outside_namespace=destination.allow_lineage_outside_namespace,
            )
            result = self._post_push(body, upload)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return DeriveResult(result.version, result.created, derived.lineage, derived.produced.notes)

    def _client_base(
        self, *, base_path: str | Path | None = None, base_module: Any = None,
        exhaustive: bool = False,
    ) -> wire.ClientBase:  # fmt: skip
        """Base weights fingerprinted here (a directory, or a live module), the fingerprint
        uploaded as a document, as the record a push sends to the server."""
        from registry.bases.target import target_from_directory, target_from_module

        target: BaseTarget
        if base_path is not None:
            path = Path(base_path)
            if not path.is_dir():
                raise errors.RegistryError(f"base model directory {path} does not exist")
            target = target_from_directory(path, exhaustive=exhaustive)
        else:
            target = target_from_module(base_module, digest=exhaustive)
        return self._base_record(target, target.label)

    def _found_base(self, directory: Path, base: str | None) -> tuple[wire.ClientBase, str]:
        """``push(exhaustive_base=True)`` without ``base_path``: the base the adapter names
        (or ``base``) found on this machine where a local push looks (a directory of that
        name, the Hugging Face cache), hashed in full here; its record and name."""
        from registry.bases.target import locate_base
        from registry.store.push import parse_base

        named = parse_base(base) if base else _config_base(directory)
        if named is None or named.name is None:
            raise errors.ArgumentError(
                f"{directory} names no base model to hash in full; pass --base-path DIR "
                "(base_path=) with its weights"
            )
        located = locate_base(named.name, named.revision, exhaustive=True)
        if located.target is None:
            raise errors.ArgumentError(
                f"cannot hash base {_base_text(named.name, named.revision)} in full: "
                f"{located.note}; pass --base-path DIR (base_path=) with its weights"
            )
        return self._base_record(located.target, located.note), base or named.name

    def _base_found_here(
        self, directory: Path, base: str | None
    ) -> tuple[wire.ClientBase | None, str | None]:
        """A plain push's base, looked for on this machine where a local push looks (a
        directory of that name, the Hugging Face cache), the server doing no such thing:
        its record fingerprinted here unless the server has a fingerprinted record of that
        name; else why it was not found here (None: found, recorded, or nothing named)."""
        from registry.bases.target import locate_base
        from registry.store.push import parse_base

        named = parse_base(base) if base else _config_base(directory)
        if named is None or named.name is None:
            return None, None
        located = locate_base(named.name, named.revision)
        if located.target is None:
            return None, located.note
        if _fingerprinted(self.bases(), named):
            return None, None
        return self._base_record(located.target, located.note), None

    def _base_record(self, target: BaseTarget, label: str) -> wire.ClientBase:
        from registry.bases.fingerprint_json import fingerprint_to_json

        document = json.dumps(fingerprint_to_json(target.fingerprint)).encode()
        digest = hashlib.sha256(document).hexdigest()
        self._send("PUT", f"/uploads/{digest}", content=document)
        # A module's config may hold values JSON has no form for; they are kept as text.
        config = json.loads(json.dumps(dict(target.config), default=str))
        return wire.ClientBase(label, digest, target.quantization, config)

    def _post_push(self, body: wire.PushBody, upload: Upload) -> PushResult:
        """The push of files ``upload`` sent already, or of them and ``body`` in one bundle."""
        from registry.remote.codec import decode

        if upload.bundled:
            return decode(PushResult, upload.send_bundle(self._send, body))
        return decode(PushResult, self._send("POST", "/push", json=wire.body_json(body)).json())


def _fingerprinted(records: Sequence[BaseModelRecord], named: BaseModelRef) -> bool:
    """Whether the record a push of base ``named`` would use has a fingerprint (the one of
    that revision; with none asked, the one recorded without one, else the newest)."""
    from registry.store.catalog.base_rows import chosen_base

    same = sorted((r for r in records if r.name == named.name), key=lambda r: r.id)
    chosen = chosen_base(same, named.revision)
    return chosen is not None and chosen.fingerprint is not None


def pushed_base_name(directory: Path, base_path: str | Path | None) -> str | None:
    """The base name a local push with ``base_path`` records when the adapter's config names
    none (the weights directory's name); None when the config names one."""
    try:
        config = json.loads((directory / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the server reads the directory and reports what is wrong with it
    named = isinstance(config, dict) and config.get("base_model_name_or_path")
    if named or base_path is None:
        return None
    return Path(base_path).absolute().name


def _config_base(directory: Path) -> BaseModelRef | None:
    """The base model an adapter's config names (PEFT's, or AdapterHub's ``model_name``)."""
    try:
        config = json.loads((directory / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # the server reads the directory and reports what is wrong with it
    if not isinstance(config, dict):
        return None
    name, revision = config.get("base_model_name_or_path"), config.get("revision")
    if not name and isinstance(config.get("config"), dict):  # AdapterHub's layout
        name, revision = config.get("model_name"), None
    if not isinstance(name, str) or not name:
        return None
    return BaseModelRef(name, revision if isinstance(revision, str) else None)


def _base_text(name: str, revision: str | None) -> str:
    return f"{name}@{revision}" if revision else name
