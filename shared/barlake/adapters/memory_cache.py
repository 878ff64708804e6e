"""In-memory cache with TTLs: the embedded default in front of storage, and the in-process L1
in front of Redis (see resilient_cache.py).

Bounded twice, least recently used first: by entries and by bytes, so a few 20-year responses
cannot crowd a function instance out of memory. Process-local (`shared = False`): another
process's writes never reach it, so readers validate generations against storage.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence


class MemoryCache:
    """LRU-bounded; expiry is checked on read. `clock` is injectable for tests."""

    shared = False

    def __init__(
        self,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        max_bytes: int = 256 * 1024 * 1024,
    ) -> None:
        self._data: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._generations: dict[str, tuple[float, int]] = {}
        self._max = max_entries
        self._max_bytes = max_bytes
        self._bytes = 0
        self._clock = clock
        self._lock = threading.Lock()

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def _get(self, key: str, now: float) -> bytes | None:
        item = self._data.get(key)
        if item is None:
            return None
        expires, value = item
        if expires <= now:
            del self._data[key]
            self._bytes -= len(value)
            return None
        self._data.move_to_end(key)
        return value

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._get(key, self._clock())

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._lock:
            now = self._clock()
            return [self._get(k, now) for k in keys]

    def _set(self, key: str, value: bytes, expires: float) -> None:
        old = self._data.pop(key, None)
        if old is not None:
            self._bytes -= len(old[1])
        if len(value) > self._max_bytes:
            return  # would evict everything else and still not fit
        self._data[key] = (expires, value)
        self._bytes += len(value)
        while len(self._data) > self._max or self._bytes > self._max_bytes:
            _, (_, evicted) = self._data.popitem(last=False)
            self._bytes -= len(evicted)

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        with self._lock:
            self._set(key, bytes(value), self._clock() + ttl_seconds)

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None:
        with self._lock:
            expires = self._clock() + ttl_seconds
            for key, value in items.items():
                self._set(key, bytes(value), expires)

    def delete(self, key: str) -> None:
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= len(old[1])
            self._generations.pop(key, None)

    def delete_prefix(self, prefix: str) -> int:
        with self._lock:
            keys = [k for k in self._data if k.startswith(prefix)]
            for k in keys:
                self._bytes -= len(self._data.pop(k)[1])
            gens = [k for k in self._generations if k.startswith(prefix)]
            for k in gens:
                del self._generations[k]
            return len(keys) + len(gens)

    def generations(self, keys: Sequence[str]) -> list[int | None]:
        with self._lock:
            now = self._clock()
            out: list[int | None] = []
            for k in keys:
                item = self._generations.get(k)
                if item is not None and item[0] <= now:
                    del self._generations[k]
                    item = None
                out.append(item[1] if item is not None else None)
            return out

    def advance(self, key: str, generation: int, ttl_seconds: int) -> None:
        with self._lock:
            expires = self._clock() + ttl_seconds
            current = self._generations.get(key)
            if current is not None and current[0] > self._clock() and current[1] > generation:
                generation = current[1]
            self._generations[key] = (expires, generation)
