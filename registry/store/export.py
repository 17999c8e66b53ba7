"""Exporting a version back to a directory in its original format.

Files are copied from the blob store while being hashed, into a staging
directory beside the target that is renamed into place only when every file
checked out, so the target is either complete or untouched. The manifest is
checked against the digest first, and its file paths must stay inside the
target: a catalog edited by hand cannot make an export write elsewhere.

Each file comes from ``BlobBackend.copy_to``: for object storage a cache miss streams
the blob once into the staging file and the cache together. Several files are copied
at once (at most ``PARALLEL_FILES``), which on object storage overlaps downloads.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path, PurePosixPath
from typing import cast

from registry.errors import ExportError, IntegrityError
from registry.progress import NoProgress, Progress
from registry.store.blob_store import BlobBackend
from registry.store.manifest import FileEntry
from registry.store.results import AdapterVersion, ExportResult
from registry.store.verify import check_manifest

PARALLEL_FILES = 4


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
        _copy_all(version.files, blobs, staging, progress)
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


def _copy_all(
    files: tuple[FileEntry, ...], blobs: BlobBackend, staging: Path, progress: Progress
) -> None:
    for entry in files:
        (staging / entry.path).parent.mkdir(parents=True, exist_ok=True)
    if len(files) <= 1:
        for entry in files:
            blobs.copy_to(entry.sha256, staging / entry.path, entry.path, progress.advance)
        return
    lock = threading.Lock()  # progress bars are not thread-safe

    def advance(count: int) -> None:
        with lock:
            progress.advance(count)

    # Largest first, so the long transfer starts at once and the small ones fit beside it.
    ordered = sorted(files, key=lambda entry: -entry.size)
    with ThreadPoolExecutor(max_workers=min(PARALLEL_FILES, len(files))) as pool:
        futures = [
            pool.submit(blobs.copy_to, e.sha256, staging / e.path, e.path, advance) for e in ordered
        ]
        done, _pending = wait(futures, return_when=FIRST_EXCEPTION)
        failed = next((f for f in done if f.exception() is not None), None)
        if failed is not None:
            for future in futures:
                future.cancel()
            raise cast(BaseException, failed.exception())
