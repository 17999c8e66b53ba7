"""Signing adapter versions, and checking their signatures.

A signature is ed25519 over the canonical JSON of a *statement*:

    {"digest": "sha256:...", "format": "adapter-registry/signature-1",
     "name": "sql-lora", "version": "3"}

The digest covers the manifest and the manifest covers every file's sha256, so once the files
are re-hashed and the digest recomputed, a good signature vouches for every stored byte.
Statements are rebuilt from the version each time, never read back from the catalog, so an
edited catalog row cannot carry an old signature over to new content.

Each signature is reported as a check:

    pass  valid, made with a key this home trusts (named as the trusted key is named here)
    warn  valid, but the key is not trusted here (``adapters key trust NAME FILE.pub``)
    fail  not valid for this version, or the stored content no longer matches the digest
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from registry.check import Check
from registry.errors import IntegrityError, SignatureError
from registry.security.keys import Keyring, key_id
from registry.security.signature_rows import StoredSignature, add_signature, signatures_of
from registry.store.actor import current_actor
from registry.store.catalog.catalog import Catalog
from registry.store.catalog.history import utcnow
from registry.store.manifest import canonical_json
from registry.store.results import AdapterVersion, VerifyReport, iso_utc
from registry.store.verify import manifest_digest, verify_version

if TYPE_CHECKING:
    from registry.store.store import Store

STATEMENT_FORMAT = "adapter-registry/signature-1"


def statement(name: str, version: str, digest: str) -> bytes:
    """The bytes a signature of version ``name@version`` with ``digest`` signs."""
    return canonical_json(
        {"digest": digest, "format": STATEMENT_FORMAT, "name": name, "version": version}
    )


@dataclass(frozen=True)
class Signature:
    """A signature recorded for a version (``created``: made by this call)."""

    ref: str
    digest: str
    key_id: str
    signer: str
    signature: str  # base64
    statement: str
    created_at: datetime
    created_by: str
    created: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "key_id": self.key_id,
            "signer": self.signer,
            "signature": self.signature,
            "statement": self.statement,
            "created_at": iso_utc(self.created_at),
            "created_by": self.created_by,
            "created": self.created,
        }


def sign(store: Store, version: AdapterVersion, key: str) -> Signature:
    """Sign ``version`` with ``key`` (a key name in the home's keyring, or a PEM file path).

    The version is verified first: signing damaged content would vouch for it.
    """
    catalog, blobs, home_root = store.catalog, store.blobs, store.root
    signer, private = Keyring(home_root, catalog).private_key(key)
    report = verify_version(version, blobs)
    if not report.ok:
        failed = "; ".join(f"{c.name}: {c.detail}" for c in report.failures)
        raise IntegrityError(f"{version.ref} fails verification ({failed}); it was not signed")
    public = private.public_key()
    text = statement(version.name, version.version, version.digest)
    new = StoredSignature(
        key_id=key_id(public),
        public_key=_b64(
            public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        ),
        signer=signer,
        signature=_b64(private.sign(text)),
        statement=text.decode("utf-8"),
        created_at=utcnow(),
        created_by=current_actor(),
    )
    stored, created = add_signature(catalog.engine, version.name, version.digest, new)
    return Signature(
        version.ref,
        version.digest,
        stored.key_id,
        stored.signer,
        stored.signature,
        stored.statement,
        stored.created_at,
        stored.created_by,
        created,
    )


@dataclass(frozen=True)
class SignatureStatus:
    key_id: str
    signer: str  # as recorded by whoever signed
    trusted_as: str | None  # the trusted key's name in this home, if trusted here
    valid: bool


def statuses(catalog: Catalog, home_root: Path, version: AdapterVersion) -> list[SignatureStatus]:
    """Each recorded signature of ``version``: checked against the statement rebuilt now."""
    recorded = signatures_of(catalog.engine, version.name, version.digest)
    if not recorded:
        return []  # the keyring is not even read: an unsigned version needs no keys
    trusted = Keyring(home_root, catalog).trusted_by_id()
    expected = statement(version.name, version.version, version.digest)
    found = []
    for stored in recorded:
        info = trusted.get(stored.key_id)
        found.append(
            SignatureStatus(
                stored.key_id,
                stored.signer,
                info.name if info is not None else None,
                _valid(stored, expected),
            )
        )
    return found


def _valid(stored: StoredSignature, expected: bytes) -> bool:
    try:
        raw = base64.b64decode(stored.public_key, validate=True)
        signature = base64.b64decode(stored.signature, validate=True)
        if hashlib.sha256(raw).hexdigest() != stored.key_id:
            return False
        Ed25519PublicKey.from_public_bytes(raw).verify(signature, expected)
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def signature_checks(
    catalog: Catalog, home_root: Path, version: AdapterVersion, intact: bool
) -> list[Check]:
    """The verify checks for ``version``'s signatures; ``intact``: its files and digest passed."""
    found = statuses(catalog, home_root, version)
    if not found:
        return [Check("signature", "skip", "not signed (adapters sign REF --key NAME)")]
    checks = []
    for status in found:
        who = status.trusted_as or status.signer
        name = f"signature {who}"
        key = f"key {status.key_id[:16]}..."
        if not status.valid:
            checks.append(
                Check(name, "fail", f"{key}: does not sign {version.ref} {version.digest[:23]}...")
            )
        elif not intact:
            checks.append(
                Check(name, "fail", f"signed by {who} ({key}) but the stored content changed since")
            )
        elif status.trusted_as is None:
            checks.append(
                Check(
                    name,
                    "warn",
                    f"valid, but {key} (signer says {status.signer!r}) is not trusted here; "
                    "trust it with `adapters key trust NAME FILE.pub`",
                )
            )
        else:
            checks.append(Check(name, "pass", f"signed by trusted key {who} ({key})"))
    return checks


def with_signature_checks(
    report: VerifyReport, catalog: Catalog, home_root: Path, version: AdapterVersion
) -> VerifyReport:
    """``report`` plus a check per signature (or one saying the version is unsigned)."""
    intact = all(
        c.status != "fail"
        for c in report.checks
        if c.name == "digest" or c.name.startswith("file ")
    )
    checks = report.checks + tuple(signature_checks(catalog, home_root, version, intact))
    return VerifyReport(report.ref, report.digest, checks)


def trusted_signers(
    store: Store,
    version: AdapterVersion,
    *,
    check_blobs: bool = True,
) -> list[str]:
    """Names of the trusted keys with a valid signature of ``version``'s intact content.

    Empty when the manifest or (with ``check_blobs``) any stored file changed since signing.
    """
    if manifest_digest(version) != version.digest:
        return []
    if check_blobs and any(store.blobs.check(f.sha256, f.size) is not None for f in version.files):
        return []
    return sorted(
        s.trusted_as
        for s in statuses(store.catalog, store.root, version)
        if s.valid and s.trusted_as is not None
    )


def require_trusted_signature(
    store: Store,
    version: AdapterVersion,
    purpose: str,
    *,
    check_blobs: bool = True,
) -> list[str]:
    """The trusted signers of ``version``; ``SignatureError`` when there are none."""
    signers = trusted_signers(store, version, check_blobs=check_blobs)
    if not signers:
        raise unsigned_error(version, purpose)
    return signers


def unsigned_error(version: AdapterVersion, purpose: str) -> SignatureError:
    return SignatureError(
        f"{version.ref} has no valid signature by a trusted key, and the policy requires "
        f"one {purpose}; sign it with `adapters sign {version.ref} --key NAME` (and trust "
        "the key with `adapters key trust`), or run `adapters verify` to see why not"
    )


def valid_signers(
    recorded: Sequence[StoredSignature], trusted: Mapping[str, str], version: AdapterVersion
) -> list[str]:
    """Names (``trusted`` maps key ids to names) of the trusted keys among ``recorded`` that
    validly sign ``version``, checked against the statement rebuilt from it; the caller has
    re-hashed its files and digest."""
    expected = statement(version.name, version.version, version.digest)
    return sorted(
        trusted[s.key_id] for s in recorded if s.key_id in trusted and _valid(s, expected)
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
