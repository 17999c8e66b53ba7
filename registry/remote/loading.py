"""Putting a server's versions to use on this machine: ``load`` and ``materialize`` from
verified blobs in the local cache, under the signature policy the server enforces.

When the server's ``policy.json`` has ``load.require_signature``, the client asks the
server which key ids it trusts and for the version's signatures, re-hashes the cached
files and the manifest digest, and checks each signature against the statement it
rebuilds from that version. With no valid trusted signature it refuses, before the model
is touched, exactly as a local load or materialise refuses.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.errors import ArgumentError, IntegrityError
from registry.remote import wire
from registry.remote.operators import RemoteOperators
from registry.store.refs import Ref
from registry.store.results import AdapterVersion

if TYPE_CHECKING:
    from registry.bases.compat import CompatReport
    from registry.bases.target import BaseTarget
    from registry.runtime.loader import LoadedAdapter, LoadMode
    from registry.store.materialize import Materialized
    from registry.store.store import Store

LOAD_PURPOSE = "to load it (policy.json: load.require_signature)"
SERVE_PURPOSE = "to serve it (policy.json: load.require_signature)"


class RemoteLoading(RemoteOperators):
    """``load`` and ``materialize`` of ``RemoteRegistry``."""

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
        """Apply a version to ``model`` here, from verified blobs in the local cache, once
        the server's signature policy is met (``merge=False``: unmerged, as locally)."""
        from registry.runtime.loader import load

        version = self.get(ref)
        cache = self._fetch(version)
        self._require_policy(version, cache, LOAD_PURPOSE)
        return load(
            cache,
            version,
            model,
            strict=strict,
            mode=mode,
            reverify=reverify,
            allow_unverified_base=allow_unverified_base,
            exhaustive=exhaustive,
            known_base=self._known_base(version),
            merge=merge,
        )

    def check_compat(
        self,
        ref: str | Ref,
        base: Any,
        *,
        allow_unverified_base: bool = False,
        exhaustive: bool = False,
    ) -> CompatReport:
        """Compatibility of a version with a base on this machine (a torch module, a
        directory, a Hub id in the local cache) or a base recorded in the server, checked
        here with what the server knows of the base it was trained on."""
        from registry.bases.target import BaseTarget, target_from_module
        from registry.store.base_records import compat_for_target

        version = self.get(ref)
        cache = self._fetch(version)
        if isinstance(base, BaseTarget):
            target = base
        elif isinstance(base, str | Path):
            target = self._base_target(str(base), exhaustive=exhaustive)
        else:
            target = target_from_module(base, digest=exhaustive)
        return compat_for_target(
            cache, version, target, allow_unverified_base=allow_unverified_base,
            known=self._known_base(version),
        )  # fmt: skip

    def _base_target(self, text: str, *, exhaustive: bool) -> BaseTarget:
        """As a local registry reads a base: a directory, else a record (of the server),
        else a Hub id in this machine's HF cache."""
        from registry.bases.target import target_from_record
        from registry.store.base_records import resolve_target

        if not Path(text).expanduser().exists():
            name, _, revision = text.partition("@")
            named = sorted((r for r in self.bases() if r.name == name), key=lambda r: r.id)
            if revision:
                named = [r for r in named if r.revision == revision][:1]
            else:  # as find_base: the one recorded without a revision, else the newest
                named = [r for r in named if not r.revision][:1] or named[-1:]
            if named and named[0].fingerprint is not None:
                return target_from_record(named[0])
        return resolve_target(text, None, exhaustive=exhaustive)

    def materialize(self, ref: str | Ref, *, rehash: bool = False) -> Path:
        """A verified, read-only PEFT directory for the version in the local cache."""
        return self._materialized(self.get(ref), rehash=rehash)

    def materialize_into(
        self,
        refs: Sequence[str | Ref] | Mapping[str, str | Ref],
        into: str | Path,
        *,
        copy: bool = False,
        rehash: bool = False,
    ) -> builtins.list[Materialized]:
        from registry.store.materialize import folder_name, lay_out

        pairs = list(refs.items()) if isinstance(refs, Mapping) else [(None, r) for r in refs]
        if not pairs:
            raise ArgumentError("give at least one adapter reference to materialize")
        entries = []
        for folder, ref in pairs:
            version = self.get(ref)
            cached = self._materialized(version, rehash=rehash)
            entries.append((folder or folder_name(version.name), version, cached))
        return lay_out(entries, Path(into), copy=copy)

    def _materialized(self, version: AdapterVersion, *, rehash: bool) -> Path:
        from registry.runtime.materialize import cache_root
        from registry.store.materialize import materialize

        cache = self._fetch(version)
        self._require_policy(version, cache, SERVE_PURPOSE)
        return materialize(version, cache.blobs, cache_root(cache), rehash=rehash)

    def _require_policy(self, version: AdapterVersion, cache: Store, purpose: str) -> None:
        from registry.remote.codec import decode
        from registry.security.signing import unsigned_error, valid_signers
        from registry.store.verify import check_manifest

        answer = self._send("GET", "/load-policy", params={"ref": version.ref})
        policy = decode(wire.LoadPolicy, answer.json())
        if not policy.require_signature:
            return
        check_manifest(version)  # the digest a signature vouches for is this manifest's
        for entry in version.files:
            problem = cache.blobs.check_local(entry.sha256, entry.size)
            if problem is not None:
                raise IntegrityError(
                    f"{version.ref}: {entry.path}: {problem} in the local cache; remove the "
                    "cache directory and try again"
                )
        if not valid_signers(policy.signatures, policy.trusted, version):
            raise unsigned_error(version, purpose)
