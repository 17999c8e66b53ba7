"""Moving one blob's bytes to and from object storage: multipart uploads through a
hashing reader or, for a file proven unchanged by its stamp, as plain parts; and
downloads as parallel ranged GETs handed on in order.

A single streamed GET is one connection's throughput; a 1 GiB blob arrives faster as
several ranges in flight at once. ``ranged_chunks`` keeps ``in_flight`` ranges
downloading while the caller hashes and writes the previous one, and yields them in
order, so a hash over the chunks is the hash of the blob; memory is bounded by
``in_flight + 1`` ranges.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, BinaryIO, TypeVar, cast

from registry.errors import IntegrityError
from registry.faults import fault_point
from registry.store.file_stamp import FileStamp
from registry.store.hashing import CHUNK_SIZE, ProgressCallback

T = TypeVar("T")


def ranged_chunks(
    fetch: Callable[[int, int], T], size: int, range_size: int, in_flight: int
) -> Iterator[T]:
    """The bytes ``[0, size)`` as ``fetch(start, end)`` of consecutive ranges, fetched on
    ``in_flight`` threads and yielded in order. A failed range raises at its turn;
    closing early cancels the ranges not started and leaves the others to finish."""
    starts = iter(range(0, size, range_size))
    pool = ThreadPoolExecutor(max_workers=in_flight, thread_name_prefix="blob-range")
    pending: deque[Future[T]] = deque()

    def submit() -> None:
        start = next(starts, None)
        if start is not None:
            pending.append(pool.submit(fetch, start, min(start + range_size, size)))

    try:
        for _ in range(in_flight):
            submit()
        while pending:
            chunk = pending.popleft().result()
            submit()  # the next range starts before this one is hashed and written
            yield chunk
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


def read_ahead(source: Iterator[T], depth: int) -> Iterator[T]:
    """``source``'s items, pulled by a thread up to ``depth`` ahead, so the download
    overlaps the caller's hashing and writing; memory is bounded by ``depth`` items.
    Errors reach the caller in order; closing early stops the thread."""
    import queue
    import threading

    items: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(kind: str, value: Any) -> bool:
        while not stop.is_set():
            try:
                items.put((kind, value), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the caller is gone

    def pump() -> None:
        try:
            for item in source:
                if not offer("item", item):
                    return
            offer("end", None)
        except BaseException as exc:  # handed to the caller, raised there
            offer("error", exc)

    thread = threading.Thread(target=pump, name="blob-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()


def put_multipart(
    store: Any, key: str, reader: CheckedReader | StampedParts, part_size: int, concurrency: int
) -> None:
    import obstore

    obstore.put(
        store,
        key,
        # A file-like object (obstore reads it in parts) or an iterator of parts (each
        # handed over without a copy).
        cast(Any, reader),
        use_multipart=True,
        chunk_size=part_size,
        max_concurrency=concurrency,
    )


def _handed_out(data: bytes, progress: ProgressCallback | None) -> bytes:
    if progress is not None:
        progress(len(data))
    fault_point("object.uploading")
    return data


def _changed(label: str) -> IntegrityError:
    return IntegrityError(f"{label} changed while it was being stored; push again")


class StampedParts:
    """A file's bytes as parts of ``part_size`` for an upload, with no second hash: the
    file's ``stamp`` was taken before it was hashed, and after the last byte is read
    (before the upload completes) the file must still have it, else this refuses and so
    aborts the upload. file_stamp.py says why that proves the bytes are the hashed ones."""

    def __init__(
        self,
        handle: BinaryIO,
        stamp: FileStamp,
        part_size: int,
        progress: ProgressCallback | None,
        label: str,
    ) -> None:
        self.handle, self.stamp, self.part_size = handle, stamp, part_size
        self.progress, self.label = progress, label
        self.seen = 0
        self.failure: IntegrityError | None = None

    def __iter__(self) -> StampedParts:
        return self

    def __next__(self) -> bytes:
        data = self.handle.read(self.part_size)
        if data:
            self.seen += len(data)
            return _handed_out(data, self.progress)
        now = FileStamp.of_descriptor(self.handle.fileno())
        if self.seen != self.stamp.size or now != self.stamp:
            self.failure = _changed(self.label)
            raise self.failure
        raise StopIteration


class CheckedReader:
    """Hands a file to the uploader while hashing it; at the end, refuses (and so
    aborts the upload before it completes) unless the bytes were the hashed ones."""

    def __init__(
        self,
        handle: BinaryIO,
        sha256: str,
        size: int,
        progress: ProgressCallback | None,
        label: str,
    ) -> None:
        self.handle, self.sha256, self.size = handle, sha256, size
        self.progress, self.label = progress, label
        self.digest = hashlib.sha256()
        self.seen = 0
        self.failure: IntegrityError | None = None

    def read(self, count: int = -1) -> bytes:
        data = self.handle.read(count if count and count > 0 else CHUNK_SIZE)
        if data:
            self.digest.update(data)
            self.seen += len(data)
            return _handed_out(data, self.progress)
        if self.seen != self.size or self.digest.hexdigest() != self.sha256:
            self.failure = _changed(self.label)
            raise self.failure
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()
