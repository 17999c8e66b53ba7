"""Versions an operator made on a client (combine, resize, extract), pushed with their
lineage, and base weights a client fingerprinted (``push --base-path``, ``base add``).

The tensor work ran on the client; the server checks what it can before recording:
every lineage parent must be stored here with the digest named and lie inside the token's
namespace (checked first, so a refusal names nothing of other namespaces); a base given
"as the parents recorded it" must be one a parent recorded; a client's fingerprint must be
well formed and recompute its own digests. The version is then pushed through the same
``push_derived`` a local operator uses, so both record the same manifest.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from registry.bases.target import QUANTIZATIONS, BaseTarget
from registry.errors import ArgumentError, FingerprintError, NotFoundError
from registry.remote import wire
from registry.runtime.derive import Destination, push_derived
from registry.server.auth import Caller
from registry.store.manifest import BaseModelRef, Lineage
from registry.store.push import parse_base
from registry.store.refs import parse_ref
from registry.store.results import AdapterVersion, PushResult
from registry.store.store import Store

_LABEL_MAX = 200
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FINGERPRINT_MAX = 256 << 20  # some 500,000 tensors' samples
CLIENT_NOTE = "fingerprinted by a client of"


def client_target(store: Store, record: wire.ClientBase, caller: Caller) -> BaseTarget:
    """The client's fingerprint (uploaded as a document) as a base target; its source
    names the token, not a path the server could read."""
    from registry.bases.fingerprint_json import fingerprint_from_json

    if record.quantization not in QUANTIZATIONS:
        raise ArgumentError(
            f"unknown quantization {record.quantization!r}; use one of {', '.join(QUANTIZATIONS)}"
        )
    fingerprint = fingerprint_from_json(_fingerprint_document(store, record.fingerprint_sha256))
    label = record.label.replace("\x00", "")[:_LABEL_MAX]
    return BaseTarget(
        f"{label} ({CLIENT_NOTE} {caller.name}; weights not seen by the server)",
        fingerprint,
        record.quantization,
        record.config,
    )


def pushed_base(store: Store, body: wire.PushBody, caller: Caller) -> BaseTarget | None:
    """The base weights a client fingerprinted for a push, if it sent them."""
    record = body.base_record
    return None if record is None else client_target(store, record, caller)


def _fingerprint_document(store: Store, sha256: str) -> Any:
    # The directory PUT /uploads/SHA256 stages files in (registry.server.uploads).
    if not _SHA256.fullmatch(sha256):
        raise ArgumentError("fingerprint_sha256 must be the sha256 of an uploaded document")
    path = store.tmp_dir / "uploads" / sha256
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ArgumentError(
            "upload the fingerprint document first (PUT /uploads/SHA256)"
        ) from None
    if size > _FINGERPRINT_MAX:
        raise ArgumentError(f"a fingerprint document is at most {_FINGERPRINT_MAX} bytes")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, RecursionError):
        raise FingerprintError("the uploaded fingerprint document is not JSON") from None


def _parents(store: Store, caller: Caller, lineage: Lineage) -> list[AdapterVersion]:
    for parent in lineage.parents:
        caller.require_name(parent.name)  # before any lookup: nothing of others is named
    found = []
    for parent in lineage.parents:
        ref = f"{parent.name}@{parent.version}"
        try:
            version = store.catalog.resolve(parse_ref(ref))
        except NotFoundError:
            version = None
        if version is None or version.digest != parent.digest:
            raise ArgumentError(
                f"lineage parent {ref} ({parent.digest[:19]}...) is not stored here; "
                "derive from versions of this registry"
            )
        found.append(version)
    return found


def push_client_derived(
    store: Store, caller: Caller, body: wire.PushBody, directory: Path
) -> PushResult:
    """Record the uploaded ``directory`` as the derived version ``body`` describes."""
    if body.lineage is None:
        raise ArgumentError("exact_base is only accepted with a lineage (a derived version)")
    if body.evals or body.data_hashes or body.requires or body.base_quantization:
        raise ArgumentError(
            "a derived version is pushed with its lineage only; record evals and the rest "
            "after it is stored"
        )
    if not body.lineage.operation or len(body.lineage.operation) > 64:
        raise ArgumentError("lineage.operation must name the operation (at most 64 characters)")
    parents = _parents(store, caller, body.lineage)
    if body.exact_base is not None and body.exact_base not in {p.base_model for p in parents}:
        raise ArgumentError(
            "exact_base must be the base a lineage parent recorded; give base weights "
            "(base_record) for anything else"
        )
    if body.exact_base is not None and body.base_record is not None:
        raise ArgumentError("give exact_base or base_record, not both")
    assert body.name is not None
    base = body.exact_base or (parse_base(body.base) if body.base else BaseModelRef(None))
    target = pushed_base(store, body, caller)
    return push_derived(
        store,
        directory,
        body.lineage,
        Destination(body.name, body.version, body.alias, body.tags),
        base=base,
        base_target=target,
    )
