"""A push in one request: ``POST /push/bundle`` carries the push body and the files.

Body: ``?header_bytes=N`` bytes of JSON ``{"push": PushBody, "sizes": {path:
size}}``, then each file of ``push.files`` in that order, exactly its size. Each file is
hashed as it streams into a staging directory of this request and must match the sha256
it is named by (else 422, nothing kept); then the directory is pushed by the library as
``POST /push`` does, with every check. Small pushes (the common case) save one round trip
per file; large ones use ``PUT /uploads`` so a failed file can be sent again alone.

Each staged file is fsynced once it hashes to its name, so the push may link it into
the blob store as it is (``store/verified_files``) rather than copy and hash it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from registry.errors import ArgumentError
from registry.remote import wire
from registry.server.auth import Caller
from registry.server.body import chunks
from registry.server.context import Context, ok
from registry.server.problems import HttpProblem
from registry.server.uploads import check_push, push_directory

HEADER_LENGTH = "header_bytes"  # query parameter: the JSON header's length


class _Reader:
    """Exact-size reads over the body's chunks."""

    def __init__(self, source: AsyncIterator[bytes]) -> None:
        self.source = source
        self.buffer = b""

    async def parts(self, size: int) -> AsyncIterator[bytes]:
        left = size
        while left:
            if not self.buffer:
                try:
                    self.buffer = await self.source.__anext__()
                except StopAsyncIteration:
                    raise HttpProblem(400, "bad_length", "the bundle ends early") from None
            part, self.buffer = self.buffer[:left], self.buffer[left:]
            left -= len(part)
            yield part

    async def exactly(self, size: int) -> bytes:
        return b"".join([part async for part in self.parts(size)])


def _header(raw: bytes) -> tuple[wire.PushBody, dict[str, int]]:
    try:
        data: Any = json.loads(raw)
    except (ValueError, RecursionError):
        raise HttpProblem(400, "bad_json", "the bundle header is not valid JSON") from None
    if not isinstance(data, dict) or set(data) != {"push", "sizes"}:
        raise ArgumentError('the bundle header is {"push": {...}, "sizes": {path: bytes}}')
    if not isinstance(data["push"], dict) or not isinstance(data["sizes"], dict):
        raise ArgumentError('the bundle header is {"push": {...}, "sizes": {path: bytes}}')
    body = wire.parse_body(wire.PushBody, data["push"])
    sizes = data["sizes"]
    if set(sizes) != set(body.files) or not all(type(n) is int and n >= 0 for n in sizes.values()):
        raise ArgumentError("sizes must give a whole number of bytes for each file, and only")
    return body, sizes


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


async def push_bundle(ctx: Context, request: Request, caller: Caller) -> Response:
    settings = ctx.settings
    length_text = request.query_params.get(HEADER_LENGTH, "")
    digits = length_text.isascii() and length_text.isdigit() and len(length_text) <= 9
    if not digits or not 0 < int(length_text) <= settings.max_json_bytes:
        raise ArgumentError(f"give ?{HEADER_LENGTH}=N: the JSON header's length in bytes")
    if request.headers.get("content-length") is None:
        raise HttpProblem(411, "length_required", "send Content-Length with a bundle")
    reader = _Reader(chunks(request, settings.max_upload_bytes, settings).__aiter__())
    body, sizes = _header(await reader.exactly(int(length_text)))
    layout = check_push(caller, body)
    staging = Path(tempfile.mkdtemp(prefix="bundle-", dir=ctx.registry.store.tmp_dir))
    try:
        directory = staging / "adapter"
        verified = {}
        # check_push keeps the order of body.files: the order the files are sent in.
        for (relative, sha), path in zip(layout.items(), body.files, strict=True):
            target = directory / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            hasher = hashlib.sha256()
            with target.open("xb") as out:
                async for part in reader.parts(sizes[path]):
                    hasher.update(part)
                    out.write(part)
            if hasher.hexdigest() != sha:
                message = f"{path} does not hash to the sha256 named; send again"
                raise HttpProblem(422, "integrity_error", message)
            verified[str(relative)] = sha
        # Anything after the last file is refused (chunks() then checks Content-Length).
        async for _extra in reader.source:
            raise HttpProblem(400, "bad_length", "the bundle is longer than its files")
        if reader.buffer:
            raise HttpProblem(400, "bad_length", "the bundle is longer than its files")

        def run() -> object:
            for relative in verified:  # in the worker thread: fsync may wait on the disk
                _fsync(directory / relative)
            return push_directory(ctx, directory, body, caller, verified)

        result = await ctx.call(caller, run)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ok(result, 201)
