"""Bounds on what a Hub download may cost: bytes, time and patience.

A server (or something in between) can stream without end, or trickle a byte at a
time; huggingface_hub would write the first into an ever-growing ``.incomplete`` file and
wait on the second for hours. Every pull therefore runs its downloads under three limits:

- **size**: no response body may exceed the size the Hub lists for the file it answers
  (a redirected request, whose target the listing cannot name, gets the largest);
- **deadline**: all downloads of one pull finish within ``ADAPTERS_HUB_DEADLINE`` seconds
  (default 3600);
- **rate**: after ``ADAPTERS_HUB_STALL_SECONDS`` (default 30) a download slower than
  ``ADAPTERS_HUB_MIN_RATE`` bytes per second (default 1024) is given up, and so is a
  connection silent for that long.

Breaking one raises ``HubError`` from inside the client's read loop, and the partial
files the client left in the HF cache are deleted. The limits sit in the client's HTTP
transport for the duration of one ``bounded_downloads`` block.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from registry.errors import ArgumentError, HubError

DEADLINE_ENV = "ADAPTERS_HUB_DEADLINE"
MIN_RATE_ENV = "ADAPTERS_HUB_MIN_RATE"
STALL_ENV = "ADAPTERS_HUB_STALL_SECONDS"


@dataclass(frozen=True)
class DownloadLimits:
    deadline: float = 3600.0  # seconds for all downloads of one pull
    min_rate: float = 1024.0  # bytes per second, measured once stall seconds have passed
    stall: float = 30.0  # seconds: the grace before the rate counts, and the read timeout

    @classmethod
    def from_environment(cls) -> DownloadLimits:
        return cls(
            deadline=_positive(DEADLINE_ENV, cls.deadline),
            min_rate=_positive(MIN_RATE_ENV, cls.min_rate, zero_ok=True),
            stall=_positive(STALL_ENV, cls.stall),
        )


def _positive(name: str, default: float, *, zero_ok: bool = False) -> float:
    text = os.environ.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value > 0 or (zero_ok and value == 0)) or value != value or value == float("inf"):
        raise ArgumentError(f"{name}={text!r} is not a positive number of seconds or bytes")
    return value


class _Guard:
    """The limits of one pull, shared by its download threads."""

    def __init__(self, limits: DownloadLimits, sizes: Mapping[str, int], where: str) -> None:
        self.limits = limits
        self.sizes = dict(sizes)
        self.largest = max(self.sizes.values(), default=0)
        self.where = where
        self.started = time.monotonic()
        self.tripped: HubError | None = None
        self.lock = threading.Lock()

    def limit_for(self, url_path: str) -> tuple[str, int]:
        path = unquote(url_path)
        for name, size in self.sizes.items():
            if path.endswith("/" + name):
                return name, size
        return "a redirected download", self.largest

    def fail(self, message: str) -> HubError:
        error = HubError(f"hub pull: {self.where}: {message}; nothing was imported")
        with self.lock:
            self.tripped = self.tripped or error
        return error

    def check_deadline(self) -> None:
        if time.monotonic() - self.started > self.limits.deadline:
            raise self.fail(
                f"the downloads took longer than {self.limits.deadline:g} s "
                f"({DEADLINE_ENV}); try again later or raise the limit"
            )


class _BoundedStream:
    """A response body read through the limits (made an ``httpx2.SyncByteStream`` by
    ``_stream_type``, which the client checks for)."""

    def __init__(self, inner: Any, guard: _Guard, name: str, limit: int, start: int) -> None:
        self.inner, self.guard, self.name = inner, guard, name
        self.limit = limit
        self.received = start  # a resumed download starts at its offset
        self.began = time.monotonic()
        self.fresh = 0

    def __iter__(self) -> Iterator[bytes]:
        limits = self.guard.limits
        for chunk in self.inner:
            self.received += len(chunk)
            self.fresh += len(chunk)
            if self.received > self.limit:
                raise self.guard.fail(
                    f"the server sent more than the {self.limit} bytes the Hub lists for "
                    f"{self.name}; the download was stopped"
                )
            self.guard.check_deadline()
            elapsed = time.monotonic() - self.began
            if elapsed > limits.stall and self.fresh / elapsed < limits.min_rate:
                raise self.guard.fail(
                    f"{self.name} arrived at {self.fresh / elapsed:.0f} B/s, below the "
                    f"{limits.min_rate:g} B/s minimum ({MIN_RATE_ENV}); try again later"
                )
            yield chunk

    def close(self) -> None:
        self.inner.close()


class _BoundedTransport:
    """Wraps the client's transport: every response body is read through the limits."""

    def __init__(self, inner: Any, guard: _Guard) -> None:
        self.inner, self.guard = inner, guard

    def handle_request(self, request: Any) -> Any:
        self.guard.check_deadline()
        response = self.inner.handle_request(request)
        if request.method == "GET":
            name, limit = self.guard.limit_for(request.url.path)
            start = _range_start(request.headers.get("range", ""))
            response.stream = _stream_type()(response.stream, self.guard, name, limit, start)
        return response

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> _BoundedTransport:
        return self

    def __exit__(self, *args: object) -> None:
        self.close()


@functools.cache
def _stream_type() -> type[_BoundedStream]:
    import httpx2  # the client's HTTP library, imported only when a pull downloads

    return type("BoundedStream", (_BoundedStream, httpx2.SyncByteStream), {})


def _range_start(header: str) -> int:
    text = header.removeprefix("bytes=").split("-")[0]
    return int(text) if text.isdigit() else 0


@contextmanager
def bounded_downloads(
    limits: DownloadLimits, sizes: Mapping[str, int], where: str, cache_repo: Path
) -> Iterator[None]:
    """Run the client's downloads inside the block under ``limits``; ``sizes`` maps each
    file's path in the repo to its listed size. Partial files are removed on failure.

    The caller holds the Hub switches lock (``settings.client_session``): the client's
    HTTP session is process-wide, and is swapped for this block only.
    """
    import httpx2
    from huggingface_hub import set_client_factory
    from huggingface_hub.utils import _http

    guard = _Guard(limits, sizes, where)
    # huggingface_hub has no getter for its factory; keep the user's (a proxy, say).
    previous = _http._GLOBAL_CLIENT_FACTORY

    def factory() -> httpx2.Client:
        client = previous()
        # Duck-typed: httpx2 calls handle_request and close, and iterates the stream.
        client._transport = _BoundedTransport(client._transport, guard)  # type: ignore[assignment]
        client.timeout = httpx2.Timeout(None, read=limits.stall)
        return client

    set_client_factory(factory)
    try:
        yield
    except BaseException:
        _remove_partial(cache_repo)
        if guard.tripped is not None:
            raise guard.tripped from None
        raise
    finally:
        set_client_factory(previous)
    if guard.tripped is not None:  # raised in a worker thread the client swallowed
        _remove_partial(cache_repo)
        raise guard.tripped


def _remove_partial(cache_repo: Path) -> None:
    blobs = cache_repo / "blobs"
    if blobs.is_dir():
        for partial in blobs.glob("*.incomplete"):
            partial.unlink(missing_ok=True)
