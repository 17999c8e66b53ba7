"""Answers kept while the catalog is unchanged: each entry is stored with the catalog
generation (``registry.store.catalog.generation``) read before its rows were, and is
served only while the generation is still that value. So a write committed by anyone
(this server, another worker, the CLI on the same catalog) takes effect on the very next
request; nothing is kept on a catalog without a generation (``None``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class Memo(Generic[V]):
    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._entries: dict[Any, tuple[Any, V]] = {}
        self._lock = threading.Lock()
        self._loading: dict[tuple[Any, Any], asyncio.Future[V]] = {}

    async def load(self, key: Any, generation: Any, make: Callable[[], Awaitable[V]]) -> V:
        """The kept value, or ``make()``'s. Requests that miss the same key at once share
        one ``make()``: a burst of clients after a write (or at start) costs one query,
        not one each. A failure is raised to every request that waited for it."""
        kept = self.get(key, generation)
        if kept is not None:
            return kept
        if generation is None:
            return await make()
        pending = self._loading.get((key, generation))
        if pending is not None:
            await asyncio.wait([pending])  # raises only if this request is cancelled
            if not pending.cancelled():
                return pending.result()
            return await make()  # the request loading it went away: load it here
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[(key, generation)] = future
        try:
            value = await make()
        except Exception as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when none waited
            raise
        except BaseException:
            future.cancel()
            raise
        finally:
            del self._loading[(key, generation)]
        future.set_result(value)
        self.put(key, generation, value)
        return value

    def get(self, key: Any, generation: Any) -> V | None:
        if generation is None:
            return None
        entry = self._entries.get(key)
        if entry is None or entry[0] != generation:
            return None
        return entry[1]

    def last(self, key: Any) -> V | None:
        """The value kept under ``key`` at whatever generation (to re-check, not serve)."""
        entry = self._entries.get(key)
        return None if entry is None else entry[1]

    def put(self, key: Any, generation: Any, value: V) -> None:
        if generation is None:
            return
        with self._lock:
            if len(self._entries) >= self.capacity:
                # Stale entries pile up after writes; starting over is simpler than LRU
                # and costs one miss per key.
                self._entries.clear()
            self._entries[key] = (generation, value)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
