"""Integrity checks of a stored version: blobs, digest, config and tensors."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from registry.check import Check
from registry.errors import IntegrityError, RegistryError, ValidationError
from registry.store.blob_store import BlobBackend
from registry.store.blobs import BlobStore
from registry.store.results import AdapterVersion, VerifyReport


def manifest_digest(version: AdapterVersion) -> str:
    """The digest the version's recorded manifest hashes to now."""
    return "sha256:" + hashlib.sha256(version.manifest.canonical_bytes()).hexdigest()


def check_manifest(version: AdapterVersion) -> None:
    """Refuse a version whose manifest was changed after it was recorded.

    Blob checks alone cannot see this: an edited manifest can name other, intact blobs.
    """
    recomputed = manifest_digest(version)
    if recomputed != version.digest:
        raise IntegrityError(
            f"{version.ref}: its recorded manifest hashes to {recomputed[:23]}..., not its "
            f"digest {version.digest[:23]}...; the catalog was changed; run "
            f"`adapters verify {version.ref}`"
        )


def verify_version(version: AdapterVersion, blobs: BlobBackend) -> VerifyReport:
    # Re-hashing is I/O and hashlib releases the GIL, as does the value scan: run the
    # format check beside the hashes and keep its result only if every blob is intact.
    # Not on an object store: its checks fill the cache the format check reads (a fill
    # hashes what it downloads), and a blob the format check fetched first would then be
    # downloaded again by its check. There the format check follows the checks.
    beside = isinstance(blobs, BlobStore)
    with ThreadPoolExecutor(max_workers=2) as pool:
        format_future = pool.submit(_format_check, version, blobs) if beside else None
        problems = [
            blobs.check(entry.sha256, entry.size, for_readers=True) for entry in version.files
        ]
        damaged = any(problem is not None for problem in problems)
        if format_future is None and not damaged:
            format_future = pool.submit(_format_check, version, blobs)
        try:
            format_check = format_future.result() if format_future is not None else None
        except Exception:
            if not damaged:
                raise
            format_check = None
    checks: list[Check] = []
    for entry, problem in zip(version.files, problems, strict=True):
        if problem is None:
            detail = f"sha256 {entry.sha256[:16]}..., {entry.size} bytes"
            checks.append(Check(f"file {entry.path}", "pass", detail))
        else:
            checks.append(Check(f"file {entry.path}", "fail", f"{entry.path}: {problem}"))

    recomputed = manifest_digest(version)
    if recomputed == version.digest:
        checks.append(Check("digest", "pass", f"manifest hashes to {version.digest[:23]}..."))
    else:
        detail = f"manifest hashes to {recomputed[:23]}..., recorded {version.digest[:23]}..."
        checks.append(Check("digest", "fail", detail))

    if damaged or format_check is None:
        checks.append(Check("format", "skip", "not checked: stored files are damaged"))
    else:
        checks.append(format_check)
    checks.append(analysis_check(version))
    return VerifyReport(ref=version.ref, digest=version.digest, checks=tuple(checks))


_ANALYSIS_DETAIL = {
    "full": "full: every tensor checked against the config",
    "structural": (
        "structural: config and safetensors headers checked, values finite; this type is "
        "not modelled, so it loads only through peft (mode='peft')"
    ),
    "opaque": (
        "opaque: a PEFT type this registry does not know; stored and exported exactly, "
        "loads only through an installed peft that knows it (mode='peft')"
    ),
}


def analysis_check(version: AdapterVersion) -> Check:
    """How deeply the version was analysed when it was pushed (recorded in its manifest)."""
    analysis = version.manifest.analysis
    if version.manifest.source_format in ("diffusers", "kohya"):
        how = (
            "keys and shapes checked against the base checkpoint given at push"
            if analysis == "full"
            else "rank, alpha and targets read from its keys; no base checkpoint was checked"
        )
        return Check(
            "analysis", "pass", f"{analysis}: a {version.manifest.source_format} LoRA, {how}"
        )
    return Check("analysis", "pass", _ANALYSIS_DETAIL.get(analysis, analysis))


def _format_check(version: AdapterVersion, blobs: BlobBackend) -> Check:
    from registry import formats

    files: dict[str, Path] = {entry.path: blobs.path(entry.sha256) for entry in version.files}
    try:
        source = formats.read_adapter_files(files, label=version.ref)
    except ValidationError as exc:
        return Check("format", "fail", "; ".join(exc.problems))
    except RegistryError as exc:
        return Check("format", "fail", str(exc))
    if source.method != version.method:
        return Check(
            "format", "fail", f"files read as {source.method}, recorded as {version.method}"
        )
    if source.analysis != "full":
        return Check(
            "format",
            "pass",
            f"{source.method} config parsed; {len(source.tensors)} tensors with valid headers, "
            "all finite (not checked against the config)",
        )
    return Check(
        "format",
        "pass",
        f"{source.method} config valid; {len(source.tensors)} tensors match it, all finite",
    )
