"""The shared cache as requests see it: an in-process L1 in front, a time budget, a breaker.

Why: the API must never fail or stall because the cache did. So every call to Redis/Upstash
goes through `_guard`:
- an error (down, refused, protocol garbage) or a call past the budget (BARLAKE_CACHE_BUDGET_MS;
  the clients' own timeouts are set to it too) opens the breaker: for a cool-off (1 s, doubling
  to 30 s while it keeps failing) calls skip the cache and requests go to storage; then one
  probe call is let through, and its success closes the breaker;
- each incident is logged once when it starts and once when it ends, and counted;
- values are framed (magic + CRC32) on the way in and checked on the way out, so a value that
  is not what we wrote (garbage, truncation, another program's key) is a miss, not an answer.

The L1 (memory_cache.MemoryCache, bounded by bytes) holds values only. Values live under keys
that name one generation of their content, so keeping them in-process can never be stale;
generations are always asked of the shared tier (or, when it is unavailable, of storage by the
caller), never kept in L1.
"""

from __future__ import annotations

import logging
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

from barlake.adapters.memory_cache import MemoryCache
from barlake.ports import Cache

log = logging.getLogger("barlake.cache")

T = TypeVar("T")
MAGIC = b"\x00BL1"
L1_TTL_SECONDS = 3600
L1_MAX_BYTES = 64 * 1024 * 1024
SHARED_MAX_VALUE_BYTES = 4 * 1024 * 1024  # larger values stay in L1 only (Upstash limits)
COOL_OFF_FIRST_S = 1.0
COOL_OFF_MAX_S = 30.0


def frame(payload: bytes) -> bytes:
    return MAGIC + zlib.crc32(payload).to_bytes(4, "big") + payload


def unframe(raw: Any) -> bytes | None:
    """The payload of a framed value, or None when raw is not one we wrote intact."""
    if not isinstance(raw, bytes | bytearray) or len(raw) < 8 or raw[:4] != MAGIC:
        return None
    payload = bytes(raw[8:])
    return payload if zlib.crc32(payload) == int.from_bytes(raw[4:8], "big") else None


class SharedCache(Cache, Protocol):
    name: str

    def ping(self) -> None: ...


@dataclass
class CacheStats:
    l1_hits: int = 0
    hits: int = 0  # shared-tier hits
    misses: int = 0
    errors: int = 0
    slow: int = 0
    corrupt: int = 0
    skipped: int = 0  # calls not made while the breaker was open
    incidents: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class CacheSlowError(TimeoutError):
    pass


class ScopedCache:
    """A shared cache seen through a key prefix: lakes that share one Redis (two local lakes
    both have a bucket called barlake-raw) never see each other's entries."""

    shared = True

    def __init__(self, inner: SharedCache, namespace: str) -> None:
        self.inner = inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.prefix = f"{namespace}:"

    def get(self, key: str) -> bytes | None:
        return self.inner.get(self.prefix + key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.inner.get_many([self.prefix + k for k in keys])

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self.inner.set(self.prefix + key, value, ttl_seconds)

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None:
        self.inner.set_many({self.prefix + k: v for k, v in items.items()}, ttl_seconds)

    def delete(self, key: str) -> None:
        self.inner.delete(self.prefix + key)

    def delete_prefix(self, prefix: str) -> int:
        return self.inner.delete_prefix(self.prefix + prefix)

    def generations(self, keys: Sequence[str]) -> list[int | None]:
        return self.inner.generations([self.prefix + k for k in keys])

    def advance(self, key: str, generation: int, ttl_seconds: int) -> None:
        self.inner.advance(self.prefix + key, generation, ttl_seconds)

    def ping(self) -> None:
        self.inner.ping()


class ResilientCache:
    """A shared Cache (RedisCache, UpstashCache) behind an L1, a budget and a breaker."""

    shared = True

    def __init__(
        self,
        inner: SharedCache,
        budget_ms: float = 50,
        *,
        l1: MemoryCache | None = None,
        namespace: str = "",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = ScopedCache(inner, namespace) if namespace else inner
        self.name = getattr(inner, "name", type(inner).__name__)
        self.budget_s = budget_ms / 1000
        self.l1 = l1 if l1 is not None else MemoryCache(max_entries=50_000, max_bytes=L1_MAX_BYTES)
        self.stats = CacheStats()
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0  # 0.0: closed (the fast path reads it without the lock)
        self._cool_off = COOL_OFF_FIRST_S
        self._probing = False
        self._incident_started = 0.0
        self._incident_skipped = 0
        self.last_error: str | None = None

    # ------------------------------------------------------------------ the breaker

    @property
    def available(self) -> bool:
        return self._open_until == 0.0

    def _allow(self) -> bool | None:
        """True: a normal call; False: a probe while open; None: skip the cache."""
        if self._open_until == 0.0:
            return True
        with self._lock:
            if self._open_until == 0.0:
                return True
            if self._probing or self._clock() < self._open_until:
                self.stats.skipped += 1
                self._incident_skipped += 1
                return None
            self._probing = True
            return False

    def _fail(self, op: str, exc: BaseException, probe: bool) -> None:
        with self._lock:
            if isinstance(exc, CacheSlowError):
                self.stats.slow += 1
            else:
                self.stats.errors += 1
            self.last_error = f"{op}: {type(exc).__name__}: {exc}"[:300]
            now = self._clock()
            if self._open_until == 0.0:
                self.stats.incidents += 1
                self._incident_started = now
                self._incident_skipped = 0
                self._cool_off = COOL_OFF_FIRST_S
                log.warning(
                    "cache %s unavailable (%s); serving from storage until it answers again",
                    self.name,
                    self.last_error,
                )
            elif probe:
                self._cool_off = min(self._cool_off * 2, COOL_OFF_MAX_S)
            self._probing = False
            self._open_until = now + self._cool_off

    def _succeed(self, probe: bool) -> None:
        if not probe:
            return
        with self._lock:
            self._probing = False
            if self._open_until != 0.0:
                log.warning(
                    "cache %s is back after %.1f s (%d calls skipped meanwhile)",
                    self.name,
                    self._clock() - self._incident_started,
                    self._incident_skipped,
                )
            self._open_until = 0.0

    def _guard(self, op: str, call: Callable[[], T], default: T) -> T:
        allowed = self._allow()
        if allowed is None:
            return default
        probe = not allowed
        started = time.perf_counter()
        try:
            result = call()
        except Exception as exc:
            self._fail(op, exc, probe)
            return default
        elapsed = time.perf_counter() - started
        if elapsed > self.budget_s:
            # Already paid for, so used; but the next requests must not wait like this one.
            budget_ms = self.budget_s * 1000
            slow = CacheSlowError(f"took {elapsed * 1000:.0f} ms, budget {budget_ms:.0f} ms")
            self._fail(op, slow, probe)
        else:
            self._succeed(probe)
        return result

    # ------------------------------------------------------------------ values

    def _checked(self, raw: Any) -> bytes | None:
        if raw is None:
            return None
        payload = unframe(raw)
        if payload is None:
            with self._lock:
                self.stats.corrupt += 1
        return payload

    def get(self, key: str) -> bytes | None:
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        out = self.l1.get_many(keys)
        missing = [i for i, v in enumerate(out) if v is None]
        l1_hits = len(keys) - len(missing)
        hits = 0
        if missing:
            raw = self._guard("get", lambda: self.inner.get_many([keys[i] for i in missing]), None)
            if raw is not None and len(raw) == len(missing):
                for i, value in zip(missing, raw, strict=True):
                    payload = self._checked(value)
                    if payload is not None:
                        out[i] = payload
                        hits += 1
                        self.l1.set(keys[i], payload, L1_TTL_SECONDS)
        with self._lock:
            self.stats.l1_hits += l1_hits
            self.stats.hits += hits
            self.stats.misses += len(missing) - hits
        return out

    def get_tiered(self, key: str) -> tuple[bytes | None, str]:
        """The value and the tier that answered: "l1", "shared" or "miss"."""
        value = self.l1.get(key)
        if value is not None:
            with self._lock:
                self.stats.l1_hits += 1
            return value, "l1"
        value = self._checked(self._guard("get", lambda: self.inner.get(key), None))
        with self._lock:
            if value is None:
                self.stats.misses += 1
            else:
                self.stats.hits += 1
        if value is None:
            return None, "miss"
        self.l1.set(key, value, L1_TTL_SECONDS)
        return value, "shared"

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self.set_many({key: value}, ttl_seconds)

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None:
        self.l1.set_many(items, min(ttl_seconds, L1_TTL_SECONDS))
        framed = {k: frame(v) for k, v in items.items() if len(v) <= SHARED_MAX_VALUE_BYTES}
        if framed:
            self._guard("set", lambda: self.inner.set_many(framed, ttl_seconds), None)

    def delete(self, key: str) -> None:
        self.l1.delete(key)
        self._guard("delete", lambda: self.inner.delete(key), None)

    def delete_prefix(self, prefix: str) -> int:
        local = self.l1.delete_prefix(prefix)  # L1 holds copies of shared entries
        shared = self._guard("delete", lambda: self.inner.delete_prefix(prefix), None)
        return local if shared is None else shared

    # ------------------------------------------------------------------ generations

    def generations(self, keys: Sequence[str]) -> list[int | None]:
        none: list[int | None] = [None] * len(keys)
        found = self._guard("generations", lambda: self.inner.generations(keys), none)
        return found if len(found) == len(keys) else none

    def advance(self, key: str, generation: int, ttl_seconds: int) -> None:
        self._guard("advance", lambda: self.inner.advance(key, generation, ttl_seconds), None)

    # ------------------------------------------------------------------ health

    def probe(self) -> tuple[bool, float, str | None]:
        """Ping the shared tier directly (the breaker does not skip it): ok, ms, error."""
        started = time.perf_counter()
        try:
            self.inner.ping()
        except Exception as exc:
            return False, (time.perf_counter() - started) * 1000, f"{type(exc).__name__}: {exc}"
        return True, (time.perf_counter() - started) * 1000, None

    def health(self) -> dict[str, Any]:
        with self._lock:
            counters = self.stats.as_dict()
        lookups = counters["l1_hits"] + counters["hits"] + counters["misses"]
        return {
            "breaker": "closed" if self.available else "open",
            "budget_ms": round(self.budget_s * 1000, 3),
            "l1_entries": len(self.l1),
            "l1_bytes": self.l1.size_bytes,
            "hit_rate": round((counters["l1_hits"] + counters["hits"]) / lookups, 4)
            if lookups
            else None,
            "counters": counters,
            "last_error": self.last_error,
        }
