"""A mapping of at most ``capacity`` entries, the least recently used out first, safe to
share between threads: what the checks of adapter files keep by their bytes
(``formats/checked_configs``, ``formats/checked_headers``) and what the server keeps of
uploads that just arrived (``server/arrivals``)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class BoundedLru(Generic[K, V]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        """The entry of ``key``, now the most recently used; None when there is none."""
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def replace(self, key: K, old: V, new: V) -> None:
        """Set ``key`` to ``new`` only if it still holds ``old`` (another thread may have
        put a newer entry meanwhile)."""
        with self._lock:
            if self._entries.get(key) is old:
                self._entries[key] = new

    def pop(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
