"""Exporting a version back to a directory in its original format.

Files are copied from the blob store while being hashed, into a staging
directory beside the target that is renamed into place only when every file
checked out, so the target is either complete or untouched. The manifest is
checked against the digest first, and its file paths must stay inside the
target: a catalog edited by hand cannot make an export write elsewhere.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from registry.errors import ExportError, IntegrityError
from registry.progress import NoProgress, Progress
from registry.store.blob_store import BlobBackend
from registry.store.hashing import CHUNK_SIZE
from registry.store.results import AdapterVersion, ExportResult
from registry.store.verify import check_manifest


def export_version(
    version: AdapterVersion,
    blobs: BlobBackend,
    directory: Path,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> ExportResult:
    progress = progress or NoProgress()
    check_manifest(version)
    for entry in version.files:
        _check_path(entry.path, version.ref)
    target = directory.expanduser().absolute()
    if target.exists():
        if not target.is_dir():
            raise ExportError(f"cannot export to {target}: it exists and is not a directory")
        if any(target.iterdir()) and not overwrite:
            raise ExportError(
                f"cannot export to {target}: the directory is not empty; "
                "choose another directory or pass --overwrite"
            )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.export-", dir=target.parent))
    except OSError as exc:
        raise ExportError(f"cannot export to {target}: {exc.strerror or exc}") from exc
    try:
        progress.start("exporting", sum(entry.size for entry in version.files))
        for entry in version.files:
            _copy_checked(
                blobs.path(entry.sha256), staging / entry.path, entry.sha256, entry.path, progress
            )
        progress.finish()
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return ExportResult(
        ref=version.ref,
        digest=version.digest,
        directory=target,
        files=tuple(sorted(entry.path for entry in version.files)),
    )


def _check_path(path: str, ref: str) -> None:
    pure = PurePosixPath(path)
    if (
        not path
        or pure.is_absolute()
        or any(part in ("..", ".") for part in path.split("/"))
        or "\\" in path
        or "\0" in path
    ):
        raise IntegrityError(f"{ref}: the file path {path!r} would leave the export directory")


def _copy_checked(
    source: Path, destination: Path, sha256: str, label: str, progress: Progress
) -> None:
    digest = hashlib.sha256()
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    try:
        with open(source, "rb") as src, open(destination, "wb") as dst:
            while True:
                count = src.readinto(buffer)
                if not count:
                    break
                digest.update(view[:count])
                dst.write(view[:count])
                progress.advance(count)
    except FileNotFoundError:
        raise IntegrityError(
            f"{label}: its blob {sha256[:16]}... is missing from the store"
        ) from None
    if digest.hexdigest() != sha256:
        raise IntegrityError(
            f"{label}: stored bytes are corrupt (hash {digest.hexdigest()[:16]}..., "
            f"recorded {sha256[:16]}...); run `adapters verify` for details"
        )
