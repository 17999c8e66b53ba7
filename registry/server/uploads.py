"""Pushes over HTTP: files are uploaded one by one, hashed as they stream in, then
pushed together as one version by the library's own ``push``.

``PUT /uploads/SHA256`` streams a file into the server's staging area and keeps it only
when its sha256 is the one named (else 422, nothing kept). ``POST /push`` runs
``Registry.push`` on the named uploads, read where they are staged
(``store/verified_files.staged_files``; laid out as a directory of hard links only for
nested, hidden or pickle files and for versions derived on a client), so every check of
a local push (formats, tensors, gates, policy) runs in the server; the catalog row is
written last, so a server stopped mid-push leaves no partial version and the retried
push completes.

When the server's blobs are on object storage, a client may send the bytes straight
there instead: ``POST /uploads/presign`` answers pre-signed PUT URLs (``direct``
false when the store cannot sign; the client then streams through ``PUT``), and
``POST /uploads/SHA256/staged`` has the server check what arrived by streaming it,
hash and all, before it counts as that upload (``store/direct_uploads``).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from starlette.requests import Request
from starlette.responses import Response

from registry.errors import ArgumentError, RegistryError
from registry.formats.pickle_convert import PICKLE_SUFFIXES
from registry.remote import wire
from registry.server.auth import Caller
from registry.server.body import chunks, read_json
from registry.server.context import Context, ok
from registry.server.derived import push_client_derived, pushed_base
from registry.server.problems import HttpProblem, naming
from registry.store import direct_uploads
from registry.store.blobs import BlobStore
from registry.store.object_blobs import ObjectBlobStore
from registry.store.verified_files import (
    STAGED_UPLOADS,
    intact_upload,
    staged_files,
    verified_files,
)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_FILES = 10_000


def _uploads_dir(ctx: Context) -> Path:
    directory = ctx.registry.store.tmp_dir / STAGED_UPLOADS
    if not directory.is_dir():  # made once; a stat costs less than a mkdir that fails
        directory.mkdir(parents=True, exist_ok=True)
    return directory


def _checked_sha(text: str) -> str:
    if not _SHA256.match(text):
        raise ArgumentError("an upload is named by the sha256 of its bytes: 64 lowercase hex")
    return text


async def put(ctx: Context, request: Request, caller: Caller) -> Response:
    sha256 = _checked_sha(request.path_params["sha256"])
    if request.headers.get("content-length") is None:
        raise HttpProblem(411, "length_required", "send Content-Length with an upload")
    directory = _uploads_dir(ctx)
    final = directory / sha256
    if final.exists():
        # Already staged (a retry): drain nothing, say so. Touched, so that gc (which
        # removes staged files untouched for a day) keeps it for the push that follows.
        ctx.arrivals.touch(sha256, final)
        return ok({"sha256": sha256, "size": final.stat().st_size, "stored": False})
    handle, name = tempfile.mkstemp(prefix=".part-", dir=directory)
    hasher = hashlib.sha256()
    size = 0
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in chunks(request, ctx.settings.max_upload_bytes, ctx.settings):
                hasher.update(chunk)
                out.write(chunk)
                size += len(chunk)
            out.flush()
            if hasher.hexdigest() != sha256:
                message = "the uploaded bytes do not hash to the sha256 named; send again"
                raise HttpProblem(422, "integrity_error", message)
            # On a worker thread: an fsync waits for the disk, seconds for a large file on
            # a busy one, and the event loop serves every other request meanwhile.
            descriptor = out.fileno()
            await ctx.call(caller, lambda: _keep_upload(ctx, descriptor, Path(name), final, sha256))
    finally:
        if os.path.exists(name):
            os.unlink(name)
    ctx.arrivals.note(sha256, final)
    return ok({"sha256": sha256, "size": size, "stored": True}, 201)


def _keep_upload(
    ctx: Context, descriptor: int, written: Path, final: Path, sha256: str
) -> None:
    """Make the uploaded bytes durable under their name, and (with local blobs) link them
    into the blob store now, so that the push finds them stored and commits with one
    fsync (the catalog's) instead of two; object stores receive them at the push."""
    os.fsync(descriptor)
    os.replace(written, final)
    blobs = ctx.registry.blobs
    if isinstance(blobs, BlobStore):
        blobs.link_upload(final, sha256)


async def presign(ctx: Context, request: Request, caller: Caller) -> Response:
    body = await read_json(request, ctx.settings)
    files = body.get("files")
    if not isinstance(files, list) or not files or len(files) > _MAX_FILES:
        raise ArgumentError(f"name between 1 and {_MAX_FILES} files by sha256: {{'files': [...]}}")
    digests = [_checked_sha(str(sha)) for sha in files]
    blobs = ctx.registry.blobs
    if not direct_uploads.can_sign(blobs):
        return ok({"direct": False, "uploads": {}})
    tickets = await ctx.call(caller, lambda: direct_uploads.sign_uploads(blobs, digests))
    uploads = {t.sha256: {"url": t.url, "key": t.key} for t in tickets}
    # How long the URLs stay valid, so that a client asks again before they expire.
    expires_in = direct_uploads.url_lifetime().total_seconds()
    return ok({"direct": True, "uploads": uploads, "expires_in": expires_in})


async def staged(ctx: Context, request: Request, caller: Caller) -> Response:
    sha256 = _checked_sha(request.path_params["sha256"])
    key = (await read_json(request, ctx.settings)).get("key")
    blobs = ctx.registry.blobs
    if not isinstance(key, str) or not isinstance(blobs, ObjectBlobStore):
        raise ArgumentError("claim a direct upload with {'key': ...} from /uploads/presign")
    final = _uploads_dir(ctx) / sha256
    if final.exists():
        return ok({"sha256": sha256, "size": final.stat().st_size, "stored": False})
    limit = ctx.settings.max_upload_bytes
    size = await ctx.call(
        caller, lambda: direct_uploads.adopt_upload(blobs, key, sha256, final, limit)
    )
    ctx.arrivals.note(sha256, final)
    return ok({"sha256": sha256, "size": size, "stored": True}, 201)


def _relative(path: str) -> PurePosixPath:
    """A file path inside the adapter directory: relative, no '..', no NUL, no backslash."""
    pure = PurePosixPath(path)
    if (
        not path
        or len(path) > 512
        or "\x00" in path
        or "\\" in path
        or pure.is_absolute()
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ArgumentError(f"file path {path[:100]!r} must be relative, without '..'")
    return pure


def check_push(caller: Caller, body: wire.PushBody) -> dict[PurePosixPath, str]:
    """What the caller may push, and the file layout (path -> sha256) it names."""
    if body.name is not None:
        caller.require_name(body.name)
    if body.alias is not None:
        caller.require("maintainer")  # pushing with an alias moves it
    if not body.files or len(body.files) > _MAX_FILES:
        raise ArgumentError(f"a push names between 1 and {_MAX_FILES} files")
    if body.name is None:
        raise ArgumentError("name the version: a pushed directory has no name here")
    layout = {_relative(path): _checked_sha(sha) for path, sha in body.files.items()}
    folders = {parent for path in layout for parent in path.parents}
    clash = next((str(path) for path in layout if path in folders), None)
    if clash is not None:
        message = f"file path {clash[:100]!r} is also a folder of another file; rename one"
        raise ArgumentError(message)
    return layout


def push_directory(
    ctx: Context,
    directory: Path,
    body: wire.PushBody,
    caller: Caller,
    verified: dict[str, str] | None = None,
) -> object:
    """``Registry.push`` of a directory laid out from a push body (every check runs); a
    version derived on a client (lineage, or a parent's exact base) is checked as one.
    ``verified``: files linked from uploads, hashed and fsynced when they arrived."""
    try:
        with verified_files(directory, verified or {}):
            return _push_directory(ctx, directory, body, caller)
    except RegistryError as exc:  # named after the version, not the staging directory
        raise naming(exc, str(directory), str(body.name)) from None


def _push_directory(ctx: Context, directory: Path, body: wire.PushBody, caller: Caller) -> object:
    if body.lineage is not None or body.exact_base is not None:
        return push_client_derived(ctx.registry.store, caller, body, directory)
    assert body.name is not None
    return ctx.registry.push(
        directory,
        name=body.name,
        version=body.version,
        base=body.base,
        data_hashes=body.data_hashes,
        evals=body.evals,
        eval_dataset=body.eval_dataset,
        eval_split=body.eval_split,
        tags=body.tags,
        alias=body.alias,
        base_quantization=body.base_quantization,
        requires=body.requires,
        base_module=pushed_base(ctx.registry.store, body, caller),
        locate_base=False,  # the client looks on its machine and sends what it found
    )


def _plain(path: PurePosixPath) -> bool:
    """A file ``read_adapter_dir`` would take as it is: top-level, visible, printable,
    not pickle (anything else is laid out as a directory, where it is skipped or
    converted with the reason recorded)."""
    name = str(path)
    return (
        "/" not in name
        and not name.startswith(".")
        and name.isprintable()
        and path.suffix.lower() not in PICKLE_SUFFIXES
    )


def register(
    ctx: Context,
    uploads: Path,
    layout: dict[PurePosixPath, str],
    body: wire.PushBody,
    caller: Caller,
) -> object:
    """Push the staged uploads ``layout`` names (every check of a local push runs)."""
    if body.lineage is not None or body.exact_base is not None or not all(map(_plain, layout)):
        return _push_laid_out(ctx, uploads, layout, body, caller)
    # The usual push: top-level files, read and linked where they are staged (each one
    # re-hashed first, as for a laid-out push).
    staged = {str(path): (_intact(ctx, uploads, sha), sha) for path, sha in layout.items()}
    try:
        with staged_files(uploads, staged):
            return _push_directory(ctx, uploads, body, caller)
    except (OSError, RegistryError) as exc:
        # A staged file removed by gc since the check above reads as missing.
        gone = [name for name, (file, _sha) in staged.items() if not file.is_file()]
        if gone:
            raise ArgumentError(f"upload {gone[0]} again (PUT /uploads/SHA256)") from None
        if isinstance(exc, RegistryError):  # named after the version, not the staging area
            raise naming(exc, str(uploads), str(body.name)) from None
        raise


def _intact(ctx: Context, uploads: Path, sha256: str) -> Path:
    """The staged upload of ``sha256``, re-hashed (with its blob, linked when it arrived)
    unless it arrived moments ago and is unchanged since (arrivals.py)."""
    path = uploads / sha256
    if ctx.arrivals.unchanged(sha256, path):
        return path
    blobs = ctx.registry.blobs
    blob = blobs.path(sha256) if isinstance(blobs, BlobStore) else None
    return intact_upload(uploads, sha256, blob)


def _push_laid_out(
    ctx: Context,
    uploads: Path,
    layout: dict[PurePosixPath, str],
    body: wire.PushBody,
    caller: Caller,
) -> object:
    """A push laid out as a directory of links to the staged files: one with nested
    paths, hidden or pickle files (the directory listing's rules decide), or a version
    derived on a client (``push_client_derived`` reads a directory)."""
    staging = Path(tempfile.mkdtemp(prefix="push-", dir=ctx.registry.store.tmp_dir))
    try:
        directory = staging / "adapter"
        verified = {}
        for relative, sha in layout.items():
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(_intact(ctx, uploads, sha), target)
                # The very file PUT hashed and fsynced: the blob store may link it too.
                verified[str(relative)] = sha
            except FileNotFoundError:  # removed by gc since the check above
                raise ArgumentError(f"upload {relative} again (PUT /uploads/SHA256)") from None
            except OSError:
                shutil.copyfile(uploads / sha, target)
        return push_directory(ctx, directory, body, caller, verified)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def push(ctx: Context, request: Request, caller: Caller) -> Response:
    body = wire.parse_body(wire.PushBody, await read_json(request, ctx.settings))
    layout = check_push(caller, body)
    uploads = _uploads_dir(ctx)
    missing = sorted(str(p) for p, sha in layout.items() if not (uploads / sha).is_file())
    if missing:
        raise ArgumentError(f"upload these files first (PUT /uploads/SHA256): {missing[:5]}")
    result = await ctx.call(caller, lambda: register(ctx, uploads, layout, body, caller))
    return ok(result, 201)
