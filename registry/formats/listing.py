"""Listing an adapter directory: which top-level files exist, and which are not for reading.

Only top-level regular files belong to an adapter. Subdirectories (trainer checkpoints, other
adapters PEFT saved by name) and special files are skipped with a reason. A symlink is followed
only while it stays inside the directory; one that leaves it is refused outright. Pickle files
are set aside unread: opening them can run code.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from registry.errors import FormatError, UnsafeFormatError
from registry.formats.config_file import CONFIG_NAME
from registry.formats.pickle_convert import PICKLE_SUFFIXES
from registry.formats.text import show

EXPECTED = (
    f"an adapter directory holding {CONFIG_NAME} and its weights "
    "(adapter_model.safetensors for PEFT, adapter.safetensors for AdapterHub)"
)


@dataclass
class Listing:
    """Top-level files by name, pickle files by name, and what was skipped and why."""

    files: dict[str, Path] = field(default_factory=dict)
    pickles: dict[str, Path] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    nested_adapters: list[str] = field(default_factory=list)  # subdirectories with a config


def list_directory(directory: Path) -> Listing:
    """The files of adapter directory ``directory``; FormatError if it is not one at all."""
    directory = Path(directory)
    if not os.path.lexists(directory):
        raise FormatError(f"{directory} does not exist; expected {EXPECTED}")
    if not directory.is_dir():
        raise FormatError(f"{directory} is not a directory; expected {EXPECTED}")
    root = directory.resolve()
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError as exc:
        raise FormatError(f"{directory} cannot be listed: {exc.strerror or exc}") from exc
    if not entries:
        raise FormatError(f"{directory} is empty; expected {EXPECTED}")
    listing = Listing()
    for entry in entries:
        _add(listing, directory, root, entry)
    return listing


def _add(listing: Listing, directory: Path, root: Path, entry: os.DirEntry[str]) -> None:
    name = entry.name
    path = Path(entry.path)
    if entry.is_symlink():
        target = Path(os.path.realpath(path))
        if not target.is_relative_to(root):
            raise UnsafeFormatError(
                f"{directory}/{show(name)} is a symlink to {target}, outside the adapter "
                "directory; copy the file in instead"
            )
        path = target
    try:
        mode = path.stat().st_mode
    except OSError:
        listing.skipped.append(f"{show(name)}: broken symlink")
        return
    if stat.S_ISDIR(mode):
        listing.skipped.append(
            f"{show(name)}/: subdirectory, not read (an adapter is the top-level files)"
        )
        if (path / CONFIG_NAME).is_file():
            listing.nested_adapters.append(name)
    elif not stat.S_ISREG(mode):
        listing.skipped.append(f"{show(name)}: not a regular file")
    elif not name.isprintable():
        listing.skipped.append(f"{show(name)}: file name with control characters")
    elif name.startswith("."):
        listing.skipped.append(f"{show(name)}: hidden file")
    elif Path(name).suffix.lower() in PICKLE_SUFFIXES:
        listing.pickles[name] = path
    else:
        listing.files[name] = path
