"""Materialising versions: verified, read-only PEFT directories in a content-addressed cache.

``cache/materialized/<digest hex>/`` under the registry home holds one version's
files exactly as exported. It is built in a staging directory beside it (every file
hashed while copied), made read-only and renamed into place, so a reader sees a
complete directory or none; when several processes race, the first rename wins and
the others use its result. A directory found in place is checked by file list and
sizes (cheap), or re-hashed on request; a damaged one is moved aside and rebuilt.

``lay_out`` then gives servers that take a directory of adapters (LoRAX, NIM, SGLang,
TGI) one folder per adapter: a symlink into the cache, or a copy, swapped in by rename.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.errors import ArgumentError, ExportError
from registry.store.blob_store import BlobBackend
from registry.store.export import export_version
from registry.store.hashing import sha256_file
from registry.store.results import AdapterVersion

CACHE_DIRNAME = "materialized"
_STAGING_PREFIX = ".staging-"
_READ_ONLY_FILE = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_READ_ONLY_DIR = _READ_ONLY_FILE | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH


@dataclass(frozen=True)
class Materialized:
    """One version laid out for a server: ``folder`` in the target directory, ``path``
    (the folder itself) and ``cached`` (the read-only cache directory it shows)."""

    ref: str
    digest: str
    folder: str
    path: Path
    cached: Path

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "digest": self.digest,
            "folder": self.folder,
            "path": str(self.path),
            "cached": str(self.cached),
        }


def cache_path(cache_root: Path, version: AdapterVersion) -> Path:
    return cache_root / version.digest.partition(":")[2]


def materialize(
    version: AdapterVersion, blobs: BlobBackend, cache_root: Path, *, rehash: bool = False
) -> Path:
    """The read-only cache directory holding ``version``'s files, built if needed."""
    final = cache_path(cache_root, version)
    if final.is_dir():
        if _intact(final, version, rehash):
            return final
        _discard(final, cache_root)
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=cache_root))
    try:
        built = export_version(version, blobs, staging / "adapter").directory
        _make_read_only(built)
        try:
            os.rename(built, final)
        except OSError:
            # Another process renamed its copy first: use it if it is whole.
            if not (final.is_dir() and _intact(final, version, rehash=False)):
                raise ExportError(
                    f"cannot materialize {version.ref} into {final}: it exists and is "
                    "damaged; remove it and retry"
                ) from None
    finally:
        _remove_tree(staging)
    return final


def _intact(directory: Path, version: AdapterVersion, rehash: bool) -> bool:
    expected = {entry.path: entry for entry in version.files}
    found = {
        path.relative_to(directory).as_posix() for path in directory.rglob("*") if not path.is_dir()
    }
    if found != set(expected):
        return False
    for relative, entry in expected.items():
        path = directory / relative
        if path.is_symlink() or not path.is_file() or path.stat().st_size != entry.size:
            return False
        if rehash and sha256_file(path) != entry.sha256:
            return False
    return True


def _discard(directory: Path, cache_root: Path) -> None:
    """Move a damaged directory aside (one rename, so readers never see it half-deleted)."""
    aside = Path(tempfile.mkdtemp(prefix=_STAGING_PREFIX, dir=cache_root))
    with contextlib.suppress(FileNotFoundError):  # another process discarded it first
        os.rename(directory, aside / "damaged")
    _remove_tree(aside)


def _make_read_only(directory: Path) -> None:
    for path in sorted(directory.rglob("*"), reverse=True):  # children before parents
        path.chmod(_READ_ONLY_DIR if path.is_dir() else _READ_ONLY_FILE)
    directory.chmod(_READ_ONLY_DIR)


def _remove_tree(directory: Path) -> None:
    # Read-only directories refuse to lose entries: make them writable first.
    for root, dirs, _files in os.walk(directory):
        for name in dirs:
            os.chmod(os.path.join(root, name), stat.S_IRWXU)
    if directory.exists():
        directory.chmod(stat.S_IRWXU)
    shutil.rmtree(directory, ignore_errors=True)


def folder_name(adapter_name: str) -> str:
    """The folder for an adapter in a flat directory: ``team/bot`` becomes ``team--bot``."""
    return adapter_name.replace("/", "--")


def lay_out(
    entries: Sequence[tuple[str, AdapterVersion, Path]], into: Path, *, copy: bool = False
) -> list[Materialized]:
    """Put each ``(folder, version, cached directory)`` at ``into/folder``: a symlink to
    the cache directory, or a copy. An existing folder of that name is replaced by a
    rename, so a server watching ``into`` sees the old or the new adapter, never a mix;
    other folders in ``into`` are left alone."""
    folders = [folder for folder, _, _ in entries]
    duplicates = sorted({f for f in folders if folders.count(f) > 1})
    if duplicates:
        raise ArgumentError(
            f"two adapters would share the folder {duplicates[0]!r}; name the folders with "
            "FOLDER=REF"
        )
    for folder in folders:
        if not folder or "/" in folder or "\\" in folder or folder in (".", ".."):
            raise ArgumentError(
                f"invalid folder name {folder!r}: use one path segment, e.g. my-bot=my-bot@prod"
            )
    into = into.expanduser().absolute()
    if into.exists() and not into.is_dir():
        raise ArgumentError(f"{into} exists and is not a directory; choose another --into")
    into.mkdir(parents=True, exist_ok=True)
    done: list[Materialized] = []
    for folder, version, cached in entries:
        target = into / folder
        staging = Path(tempfile.mkdtemp(prefix=f".{folder}.", dir=into))
        try:
            new = staging / "entry"
            if copy:
                shutil.copytree(cached, new)
                for path in new.rglob("*"):
                    path.chmod(stat.S_IRUSR | stat.S_IWUSR | stat.S_IRGRP | stat.S_IROTH)
            else:
                new.symlink_to(cached, target_is_directory=True)
            _swap_in(new, target, staging)
        finally:
            _remove_tree(staging)
        done.append(Materialized(version.ref, version.digest, folder, target, cached))
    return done


def _swap_in(new: Path, target: Path, staging: Path) -> None:
    if target.is_symlink() or not target.exists():
        os.replace(new, target)  # atomic for a symlink or a free name
        return
    if not target.is_dir():
        raise ArgumentError(f"{target} exists and is not a directory; remove it first")
    old = staging / "old"
    os.rename(target, old)
    os.rename(new, target)
