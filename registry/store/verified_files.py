"""Files a push may store by link: bytes already hashed and fsynced as they arrived.

The server stages each ``PUT /uploads/SHA256`` (hashed while it streams in, fsynced,
renamed to its digest) and lays a push out from those files by hard link. Declaring them
here, for the push of that one directory, lets the blob store link the staged file into
place instead of copying and hashing it a second time, and lets the push lease every
digest in one transaction. A context variable, like the actor: one server process runs
many pushes at once, each in its own context.

``staged_files`` goes one step further for a push whose files are all staged uploads at
the top level: the push reads them where they are staged, with no directory laid out for
it (no temporary directory made, linked into and removed per push).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from registry.errors import ArgumentError, IntegrityError

# The folder of the registry's tmp directory the server stages uploads in, one file per
# sha256; gc removes each one untouched for as long as a lease lives, on its own.
STAGED_UPLOADS = "uploads"

_VERIFIED: ContextVar[tuple[Path, Mapping[str, str]] | None] = ContextVar(
    "adapters_verified_files", default=None
)
# (directory, relative name -> the staged file holding its bytes) of a staged push.
_SOURCES: ContextVar[tuple[Path, Mapping[str, Path]] | None] = ContextVar(
    "adapters_staged_sources", default=None
)


@contextmanager
def verified_files(directory: Path, files: Mapping[str, str]) -> Iterator[None]:
    """Within the block, a push of ``directory`` may take ``files`` (relative path ->
    sha256) as verified: each must be the very file that was hashed to that digest."""
    token = _VERIFIED.set((directory.absolute(), dict(files)))
    try:
        yield
    finally:
        _VERIFIED.reset(token)


def verified_for(directory: Path) -> Mapping[str, str]:
    """The verified files declared for a push of ``directory`` (none for any other)."""
    declared = _VERIFIED.get()
    if declared is None or declared[0] != directory.absolute():
        return {}
    return declared[1]


@contextmanager
def staged_files(directory: Path, files: Mapping[str, tuple[Path, str]]) -> Iterator[None]:
    """Within the block, a push of ``directory`` is exactly ``files`` (top-level name ->
    (staged file, its sha256)), read where they are instead of listing ``directory``, and
    each verified as ``verified_files`` declares."""
    sources = {name: path for name, (path, _sha) in files.items()}
    token = _SOURCES.set((directory.absolute(), sources))
    try:
        with verified_files(directory, {name: sha for name, (_p, sha) in files.items()}):
            yield
    finally:
        _SOURCES.reset(token)


def staged_sources(directory: Path) -> Mapping[str, Path] | None:
    """The files of a staged push of ``directory`` (None: read the directory itself)."""
    declared = _SOURCES.get()
    if declared is None or declared[0] != directory.absolute():
        return None
    return declared[1]


def intact_upload(uploads: Path, sha256: str, blob: Path | None = None) -> Path:
    """The staged upload of ``sha256`` in ``uploads``, re-hashed before a push links it.

    It was hashed as it arrived, but it may wait on disk for hours before the push that
    uses it, and a link into the blob store reads nothing: a file damaged meanwhile would
    become a blob whose bytes do not match its name. So it is read once more here (one
    sequential read, through the page cache for a file that just arrived); a damaged one
    is removed, so that the client's next ``PUT`` stores it anew, and the push refused.
    ``blob``: where the blob store keeps ``sha256``; the upload was linked there when it
    arrived, so a damaged upload that is still that very file is removed from there too
    (else the next push would find the damaged blob stored and keep it).
    """
    from registry.store.prehash import mapped_sha256

    path = uploads / sha256
    try:
        found = mapped_sha256(path)
    except FileNotFoundError:
        raise ArgumentError(f"upload {sha256[:12]}... again (PUT /uploads/SHA256)") from None
    if found != sha256:
        if blob is not None and _same_file(blob, path):
            blob.unlink(missing_ok=True)
        path.unlink(missing_ok=True)
        raise IntegrityError(
            f"the staged upload {sha256[:12]}... no longer hashes to its name on the server "
            "(damaged on disk) and was removed; push again to send it anew"
        )
    return path


def _same_file(one: Path, other: Path) -> bool:
    try:
        return one.samefile(other)
    except OSError:
        return False
