"""Reading request bodies within limits: size, nesting depth, and time.

A body is read chunk by chunk; a client that stops sending for ``idle_seconds`` (or takes
longer than ``request_seconds`` over a JSON body) gets a 408, one that sends more than
the limit or than it declared a 413/400, before anything is written.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import anyio
from starlette.requests import Request

from registry.server.problems import HttpProblem
from registry.server.settings import ServerSettings


async def chunks(request: Request, limit: int, settings: ServerSettings) -> AsyncIterator[bytes]:
    """The body's chunks, refusing more than ``limit`` bytes or than Content-Length says."""
    declared = _declared_length(request)
    if declared is not None and declared > limit:
        raise HttpProblem(413, "too_large", f"the body is over the {limit}-byte limit")
    received = 0
    stream = request.stream().__aiter__()
    while True:
        try:
            chunk = await _within(settings.idle_seconds, stream.__anext__())
        except StopAsyncIteration:
            break
        except TimeoutError:
            raise HttpProblem(408, "timeout", "the request body stopped arriving") from None
        received += len(chunk)
        if received > limit:
            raise HttpProblem(413, "too_large", f"the body is over the {limit}-byte limit")
        if declared is not None and received > declared:
            raise HttpProblem(400, "bad_length", "the body is longer than its Content-Length")
        if chunk:
            yield chunk
    if declared is not None and received != declared:
        raise HttpProblem(400, "bad_length", "the body is shorter than its Content-Length")


if sys.version_info >= (3, 11):

    async def _within(seconds: float, step: Awaitable[bytes]) -> bytes:
        # The server runs on asyncio (or uvloop): its own timeout costs about half of an
        # anyio cancel scope, entered once per chunk of every body.
        async with asyncio.timeout(seconds):
            return await step

else:  # pragma: no cover - asyncio.timeout is new in 3.11

    async def _within(seconds: float, step: Awaitable[bytes]) -> bytes:
        with anyio.fail_after(seconds):
            return await step


def _declared_length(request: Request) -> int | None:
    text = request.headers.get("content-length")
    if text is None:
        return None
    if not text.isdigit():
        raise HttpProblem(400, "bad_length", "Content-Length is not a number")
    return int(text)


async def read_json(request: Request, settings: ServerSettings) -> dict[str, Any]:
    """A JSON object body, whole within ``request_seconds``, no deeper than the limit."""
    started = time.monotonic()
    parts = []
    async for chunk in chunks(request, settings.max_json_bytes, settings):
        parts.append(chunk)
        if time.monotonic() - started > settings.request_seconds:
            raise HttpProblem(408, "timeout", "the request body took too long")
    raw = b"".join(parts)
    if _depth(raw, settings.max_json_depth) > settings.max_json_depth:
        raise HttpProblem(400, "bad_json", f"JSON nested deeper than {settings.max_json_depth}")
    try:
        data = json.loads(raw or b"{}")
    except (ValueError, RecursionError):
        raise HttpProblem(400, "bad_json", "the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise HttpProblem(400, "bad_json", "the body must be a JSON object")
    return data


def _depth(raw: bytes, limit: int) -> int:
    """How deep ``raw`` nests, or at most the number of its brackets when that is within
    ``limit`` (it cannot nest deeper: counting them is one pass in C, walking the bytes one
    in Python)."""
    brackets = raw.count(b"[") + raw.count(b"{")
    if brackets <= limit:
        return brackets
    return _nesting(raw)


def _nesting(raw: bytes) -> int:
    # Counted on the bytes before parsing (skipping strings), so that a deep document
    # never reaches the recursive parser.
    depth = deepest = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            deepest = max(deepest, depth)
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return deepest
