"""Content hashes: files, byte strings and training-data directories.

The training-data digest of a directory is a Merkle-style digest so that another
tool can recompute it: list every regular file below the directory (symlinks to
files are followed, hidden files included), take its path relative to the
directory in POSIX form, sort by the UTF-8 bytes of that path, and hash the
concatenation of ``<path>\\0<sha256 hex of the file>\\n`` for each file (a name that is
not valid UTF-8 enters as its raw bytes). A single
file's digest is the plain sha256 of its bytes. Both print as ``sha256:<hex>``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from registry.errors import InvalidNameError, RegistryError

CHUNK_SIZE = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")

ProgressCallback = Callable[[int], None]


def sha256_file(path: Path, progress: ProgressCallback | None = None) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks into one reused buffer."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        # No larger than the file needs: zeroing a 1 MiB buffer costs more than hashing a
        # small file (a config blob re-hashed at every push that finds it stored).
        size = os.fstat(handle.fileno()).st_size
        buffer = bytearray(min(CHUNK_SIZE, size + 1))
        view = memoryview(buffer)
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            if progress is not None:
                progress(count)
    return digest.hexdigest()


def copy_hashed(source: Path, destination: Path, progress: ProgressCallback | None = None) -> str:
    """Copy ``source`` to a new file ``destination``; the hex sha256 of the bytes copied."""
    with open(destination, "wb") as dst:
        return write_hashed(source, dst, progress)[0]


def write_hashed(
    source: Path, dst: BinaryIO, progress: ProgressCallback | None = None
) -> tuple[str, int]:
    """Copy ``source`` into the open file ``dst``; the hex sha256 and size of the bytes."""
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray(CHUNK_SIZE)
    view = memoryview(buffer)
    with open(source, "rb") as src:
        while True:
            count = src.readinto(buffer)
            if not count:
                break
            digest.update(view[:count])
            dst.write(view[:count])
            size += count
            if progress is not None:
                progress(count)
    return digest.hexdigest(), size


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_digest(text: str) -> str:
    """Accept ``sha256:<64 hex>`` (or the bare hex) and return the hex part."""
    value = text.strip().lower()
    if value.startswith("sha256:"):
        value = value[len("sha256:") :]
    if not _HEX64.match(value):
        raise InvalidNameError(
            f"invalid sha256 digest {text!r}: expected 'sha256:' and 64 hex digits"
        )
    return value


@dataclass(frozen=True)
class DataDigest:
    """The digest of one training-data input."""

    sha256: str  # hex
    kind: Literal["file", "directory", "given"]
    source: str  # what the user named: a path, or the digest itself
    files: int
    size: int

    @property
    def ref(self) -> str:
        return f"sha256:{self.sha256}"


def data_digest(path: Path) -> DataDigest:
    """Digest a training-data file or directory (see the module docstring)."""
    if path.is_file():
        return DataDigest(sha256_file(path), "file", str(path), 1, path.stat().st_size)
    if not path.is_dir():
        raise RegistryError(f"training data {path} does not exist")
    entries: list[tuple[bytes, Path]] = []
    for dirpath, _dirnames, filenames in os.walk(path, followlinks=False):
        for filename in filenames:
            full = Path(dirpath) / filename
            if full.is_file():
                # os.fsencode: the name's own bytes (UTF-8 for valid names, never an error).
                entries.append((os.fsencode(full.relative_to(path).as_posix()), full))
    if not entries:
        raise RegistryError(f"training data directory {path} holds no files")
    entries.sort(key=lambda entry: entry[0])
    outer = hashlib.sha256()
    total = 0
    for rel, full in entries:
        outer.update(rel + b"\0" + sha256_file(full).encode("ascii") + b"\n")
        total += full.stat().st_size
    return DataDigest(outer.hexdigest(), "directory", str(path), len(entries), total)


def given_digest(text: str) -> DataDigest:
    hex_digest = parse_digest(text)
    return DataDigest(hex_digest, "given", f"sha256:{hex_digest}", 0, 0)
