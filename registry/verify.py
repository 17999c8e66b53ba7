"""Integrity checks of a stored version: blobs, digest, config and tensors."""

from __future__ import annotations

import hashlib
from pathlib import Path

from registry.blobs import BlobStore
from registry.errors import RegistryError, ValidationError
from registry.results import AdapterVersion, Check, VerifyReport


def verify_version(version: AdapterVersion, blobs: BlobStore) -> VerifyReport:
    checks: list[Check] = []
    intact = True
    for entry in version.files:
        problem = blobs.check(entry.sha256, entry.size)
        if problem is None:
            checks.append(
                Check(
                    f"file {entry.path}",
                    "pass",
                    f"sha256 {entry.sha256[:16]}..., {entry.size} bytes",
                )
            )
        else:
            intact = False
            checks.append(Check(f"file {entry.path}", "fail", f"{entry.path}: {problem}"))

    recomputed = "sha256:" + hashlib.sha256(version.manifest.canonical_bytes()).hexdigest()
    if recomputed == version.digest:
        checks.append(Check("digest", "pass", f"manifest hashes to {version.digest[:23]}..."))
    else:
        checks.append(
            Check(
                "digest",
                "fail",
                f"manifest hashes to {recomputed[:23]}..., recorded {version.digest[:23]}...",
            )
        )

    if not intact:
        checks.append(Check("format", "skip", "not checked: stored files are damaged"))
    else:
        checks.append(_format_check(version, blobs))
    return VerifyReport(ref=version.ref, digest=version.digest, checks=tuple(checks))


def _format_check(version: AdapterVersion, blobs: BlobStore) -> Check:
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
    return Check(
        "format",
        "pass",
        f"{source.method} config valid; {len(source.tensors)} tensors match it, all finite",
    )
