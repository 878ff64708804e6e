"""Which generation of an object is current: how the API's cache stays coherent with writes.

Cached values live under keys that name the generation of the object they were built from, so
a cached value can never be stale by itself; the only question is which generation is current.
- With a shared cache (Redis, Upstash), every writer announces the generation it just wrote
  (`AnnouncingStore`: ingest for daily objects, weekly and profile for derived ones), and
  readers ask the cache: one round trip, no storage call. A generation key the cache does not
  have (evicted, expired, never announced) is read from storage and announced by the reader.
  `advance` only moves forward, so a reader announcing what it just read can never hide a
  newer write, nor can two writers announcing out of order.
- A process-local cache (memory) or none cannot hear other processes' writes: readers always
  ask storage.
- A store whose stat is cheaper than a cache round trip (the local folder: microseconds) is
  always asked, whatever the cache: a writer configured with another cache (`barlake run` on
  the default memory cache beside `barlake serve` on Redis) announces nothing, and a local
  lake's reads must still never be stale.
The generation keys carry a TTL (GENERATION_TTL_SECONDS) only as a safety net, for remote
storage: a write whose announcement failed (cache down at that moment), or a write by a
process not configured with this shared cache or from outside barlake, is seen at the latest
that much later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from barlake.ports import Cache, ObjectInfo, ObjectStore, StoredObject

log = logging.getLogger("barlake.cache")

KEY_PREFIX = "barlake:v1:"
GENERATION_TTL_SECONDS = 60
STAT_THREADS = 8


def generation_key(bucket: str, name: str) -> str:
    return f"{KEY_PREFIX}gen:{bucket}/{name}"


def value_prefix(bucket: str, name: str) -> str:
    """Every value built from any generation of the object starts with this."""
    return f"{KEY_PREFIX}val:{bucket}/{name}@"


def value_key(bucket: str, name: str, generation: int, variant: str) -> str:
    return f"{value_prefix(bucket, name)}{generation}:{variant}"


def _announce(cache: Cache, bucket: str, name: str, generation: int) -> None:
    try:
        cache.advance(generation_key(bucket, name), generation, GENERATION_TTL_SECONDS)
    except Exception as exc:  # a cache never fails a write (the resilient wrapper logs it)
        log.warning("could not announce %s/%s@%s: %s", bucket, name, generation, exc)


class AnnouncingStore:
    """An ObjectStore that announces every generation it writes to a shared cache."""

    def __init__(self, store: ObjectStore, cache: Cache) -> None:
        self.store = store
        self.cache = cache
        self.bucket = store.bucket

    def read(self, name: str) -> StoredObject | None:
        return self.store.read(name)

    def stat(self, name: str) -> ObjectInfo | None:
        return self.store.stat(name)

    def write(
        self,
        name: str,
        data: bytes,
        *,
        if_generation_match: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> ObjectInfo:
        info = self.store.write(
            name, data, if_generation_match=if_generation_match, metadata=metadata
        )
        _announce(self.cache, self.bucket, name, info.generation)
        return info

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.store.list(prefix)

    def delete(self, name: str) -> bool:
        deleted = self.store.delete(name)
        try:
            self.cache.delete(generation_key(self.bucket, name))
        except Exception as exc:
            log.warning("could not forget %s/%s: %s", self.bucket, name, exc)
        return deleted

    def __getattr__(self, attr: str) -> Any:  # adapter extras (a local store's folder, …)
        return getattr(self.store, attr)


def announcing(store: ObjectStore, cache: Cache) -> ObjectStore:
    """The store itself when the cache is process-local (readers ask storage anyway)."""
    return AnnouncingStore(store, cache) if cache.shared else store


def stat_is_cheap(store: ObjectStore) -> bool:
    """Storage answers "which generation" faster than a cache would (a local folder)."""
    return bool(getattr(store, "stat_is_cheap", False))


class Generations:
    """Current generations of objects, from the shared cache when it knows them."""

    def __init__(self, cache: Cache) -> None:
        self.cache = cache
        self._pool: Any = None

    def current(self, store: ObjectStore, names: Sequence[str]) -> list[int | None]:
        """Each object's current generation, or None when it does not exist."""
        if not self.cache.shared or stat_is_cheap(store):
            return self._stat_many(store, names)
        keys = [generation_key(store.bucket, n) for n in names]
        found = self.cache.generations(keys)
        unknown = [i for i, generation in enumerate(found) if generation is None]
        stats = self._stat_many(store, [names[i] for i in unknown])
        for i, generation in zip(unknown, stats, strict=True):
            found[i] = generation
            if generation is not None:
                self.cache.advance(keys[i], generation, GENERATION_TTL_SECONDS)
        return found

    def _stat_many(self, store: ObjectStore, names: Sequence[str]) -> list[int | None]:
        """Storage stats, concurrently when there are several (a batch whose generation keys
        expired together would otherwise pay one GCS round trip per symbol in a row)."""
        if len(names) <= 1:
            return [self._stat(store, n) for n in names]
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(STAT_THREADS, thread_name_prefix="barlake-stat")
        return list(self._pool.map(lambda n: self._stat(store, n), names))

    def saw(self, store: ObjectStore, name: str, generation: int, expected: int | None) -> None:
        """A reader read `generation` where the cache said `expected`: repair the key.

        Newer: announce it (a write whose announcement has not landed). Older: the cache's
        generation names nothing that exists (garbage, or a deleted object): forget it.
        """
        if not self.cache.shared or stat_is_cheap(store) or generation == expected:
            return
        key = generation_key(store.bucket, name)
        if expected is not None and generation < expected:
            self.cache.delete(key)
        self.cache.advance(key, generation, GENERATION_TTL_SECONDS)

    @staticmethod
    def _stat(store: ObjectStore, name: str) -> int | None:
        info = store.stat(name)
        return info.generation if info is not None else None
