"""The request bodies of the HTTP API, shared by the server and the remote client.

Each is decoded with ``codec.decode``: a body of the wrong shape or with unknown keys is
an ``ArgumentError`` (400), never half-applied.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

from registry import errors
from registry.errors import ArgumentError
from registry.remote.codec import decode, encode
from registry.security.signature_rows import StoredSignature
from registry.store.manifest import BaseModelRef, Lineage

API = "/api/v1"
T = TypeVar("T")

# Most specific first: the first class an error is an instance of decides.
ERROR_CODES: list[tuple[type[errors.RegistryError], str, int]] = [
    (errors.InvalidNameError, "invalid_name", 400),
    (errors.ArgumentError, "invalid_argument", 400),
    (errors.NotFoundError, "not_found", 404),
    (errors.ConflictError, "conflict", 409),
    (errors.GateError, "gate_unmet", 409),
    (errors.UnsafeFormatError, "unsafe_format", 422),
    (errors.FormatError, "format_error", 422),
    (errors.ValidationError, "validation_error", 422),
    (errors.IntegrityError, "integrity_error", 422),
    (errors.SignatureError, "signature_error", 422),
    (errors.FingerprintError, "fingerprint_error", 422),
    (errors.UnsupportedMethodError, "unsupported_method", 422),
    (errors.IncompatibleAdaptersError, "incompatible_adapters", 422),
    (errors.BaseModelMismatchError, "base_model_mismatch", 422),
    (errors.CatalogError, "catalog_unavailable", 503),
    (errors.HubError, "hub_error", 502),
    (errors.ExportError, "export_error", 500),
    (errors.AccessError, "forbidden", 403),
    (errors.ServerError, "server_error", 502),
    (errors.HomeError, "home_error", 500),
    (errors.RegistryError, "registry_error", 500),
]


def parse_body(kind: type[T], data: dict[str, Any]) -> T:
    known = {f.name for f in dataclasses.fields(kind)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ArgumentError(f"unknown field(s) {', '.join(unknown)}; expected {sorted(known)}")
    missing = sorted(
        f.name
        for f in dataclasses.fields(kind)  # type: ignore[arg-type]
        if f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
        and f.name not in data
    )
    if missing:
        raise ArgumentError(f"missing field(s) {', '.join(missing)}")
    return decode(kind, data)


def body_json(body: Any) -> dict[str, Any]:
    """A request body as JSON without the fields left at their defaults: the server fills
    them in (``parse_body``), and a server older than a field still takes a body that does
    not use it."""
    encoded: dict[str, Any] = encode(body)
    for f in dataclasses.fields(body):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            continue
        if getattr(body, f.name) == default:
            del encoded[f.name]
    return encoded


@dataclass(frozen=True)
class RefBody:
    ref: str


@dataclass(frozen=True)
class EvalBody:
    ref: str
    scores: dict[str, float]
    dataset: str = ""
    split: str = ""
    notes: str = ""


@dataclass(frozen=True)
class AliasBody:
    ref: str
    alias: str
    requires: list[str] = field(default_factory=list)
    note: str = ""


@dataclass(frozen=True)
class AliasRemoveBody:
    name: str
    alias: str
    note: str = ""


@dataclass(frozen=True)
class YankBody:
    ref: str
    reason: str


@dataclass(frozen=True)
class RemoveBody:
    ref: str
    force: bool = False
    reason: str = ""


@dataclass(frozen=True)
class GcBody:
    dry_run: bool = False


@dataclass(frozen=True)
class SignBody:
    ref: str
    key: str


@dataclass(frozen=True)
class TokenBody:
    name: str
    role: str
    namespace: str | None = None
    expires: str | None = None


@dataclass(frozen=True)
class TokenNameBody:
    name: str


@dataclass(frozen=True)
class KeyBody:
    """A public key to trust: PEM or OpenSSH text (never a private key)."""

    name: str
    public_key: str


@dataclass(frozen=True)
class KeyNameBody:
    name: str


@dataclass(frozen=True)
class PolicyBody:
    """A policy document to store or check; None (check only): the stored one."""

    document: Any = None


@dataclass(frozen=True)
class ClientBase:
    """Base weights fingerprinted by the client (``push --base-path``, ``base add``). The
    fingerprint document (``fingerprint_to_json``; a model of many tensors outgrows a JSON
    body) is uploaded first like a file and named by its sha256. The server checks that it
    is well formed and recomputes its digests from its samples, but cannot see the
    weights, so it records the source as the client's."""

    label: str
    fingerprint_sha256: str
    quantization: str = "none"
    config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadPolicy:
    """What a client needs to apply ``load.require_signature`` to one version."""

    require_signature: bool
    trusted: dict[str, str]  # key id -> the name the server trusts it as
    signatures: list[StoredSignature]


@dataclass(frozen=True)
class TagsBody:
    ref: str
    tags: dict[str, str] = field(default_factory=dict)
    remove: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DescribeBody:
    ref: str
    text: str


@dataclass(frozen=True)
class BaseBody:
    """``base add`` of weights the client fingerprinted, recorded as ``name``."""

    record: ClientBase
    name: str
    revision: str | None = None
    version: str | None = None
    quantization: str | None = None


@dataclass(frozen=True)
class BaseLinkBody:
    source: str
    target: str
    relation: str


@dataclass(frozen=True)
class PushBody:
    """A push of files uploaded before (``PUT /uploads/SHA256``): relative path -> sha256."""

    files: dict[str, str]
    name: str | None = None
    version: str | None = None
    base: str | None = None
    data_hashes: list[str] = field(default_factory=list)
    evals: dict[str, float] = field(default_factory=dict)
    eval_dataset: str = ""
    eval_split: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    alias: str | None = None
    base_quantization: str | None = None
    requires: dict[str, str] = field(default_factory=dict)
    # A version an operator made on the client (combine, resize, extract): its lineage,
    # whose parents the server checks exist and are the caller's to see, and the base as
    # the parents recorded it, or weights fingerprinted by the client.
    lineage: Lineage | None = None
    exact_base: BaseModelRef | None = None
    base_record: ClientBase | None = None
    # A version named NS/... whose lineage names parents outside NS/ is refused unless this
    # says it is meant: its manifest shows those parents to NS/'s tokens.
    lineage_outside_namespace: bool = False
