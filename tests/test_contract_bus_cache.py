"""The cache contract, run against every cache adapter, and what only the in-process bus does
(fan-out per subscription, retries, dead-lettering). The event-bus contract that every bus
adapter meets (in-process and Pub/Sub) is in test_contract_pubsub.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from barlake.adapters.inprocess_bus import InProcessBus
from barlake.adapters.memory_cache import MemoryCache
from barlake.adapters.null_cache import NullCache
from barlake.messages import IngestBatch
from barlake.ports import Cache


def test_inprocess_bus_delivers_to_every_subscription_of_the_topic() -> None:
    bus = InProcessBus()
    got: dict[str, list[Any]] = {"a": [], "b": []}
    bus.subscribe("t", lambda d, a: got["a"].append((IngestBatch.from_json(d), dict(a))))
    bus.subscribe("t", lambda d, a: got["b"].append(d))
    msg = IngestBatch("run", "run-b00000", ("AAPL", "^GSPC"))
    bus.publish("t", msg.to_json(), {"run_id": "run"})
    bus.publish("other", {"version": 1})
    assert bus.drain() == 2
    assert got["a"] == [(msg, {"version": "1", "run_id": "run"})]
    assert got["b"] == [msg.to_json()]


def test_inprocess_bus_retries_then_dead_letters() -> None:
    bus = InProcessBus(max_attempts=3)
    attempts: list[int] = []
    dead: list[Any] = []

    def flaky(d: Any, a: Any) -> None:
        attempts.append(1)
        if len(attempts) < 2:
            raise RuntimeError("transient")

    bus.subscribe("t", flaky)
    bus.subscribe("always", lambda d, a: (_ for _ in ()).throw(RuntimeError("boom")), "always-sub")
    bus.subscribe("dead-letter", lambda d, a: dead.append((d, a)))
    bus.publish("t", {"n": 1})
    bus.publish("always", {"n": 2})
    bus.drain()
    assert len(attempts) == 2
    assert len(dead) == 1
    assert dead[0][0]["subscription"] == "always-sub" and dead[0][0]["error"] == "boom"
    assert dead[0][1] == {"attempts": "3"}


def _redis(request: pytest.FixtureRequest) -> Cache:
    from barlake.adapters.redis_cache import RedisCache

    return RedisCache(request.getfixturevalue("redis_url"), timeout_s=2)


def _upstash(request: pytest.FixtureRequest) -> Cache:
    from barlake.adapters.upstash_cache import UpstashCache

    bridge = request.getfixturevalue("upstash")
    return UpstashCache(bridge.url, bridge.token, timeout_s=2)


def _resilient(inner: Callable[[pytest.FixtureRequest], Cache]) -> Callable[..., Cache]:
    def make(request: pytest.FixtureRequest) -> Cache:
        from barlake.adapters.resilient_cache import ResilientCache

        return ResilientCache(inner(request), budget_ms=2000)  # type: ignore[arg-type]

    return make


# Every cache that holds what it is given; NullCache is checked on its own below.
CACHES: dict[str, Callable[[pytest.FixtureRequest], Cache]] = {
    "memory": lambda request: MemoryCache(),
    "redis": _redis,
    "upstash": _upstash,
    "resilient-redis": _resilient(_redis),
    "resilient-upstash": _resilient(_upstash),
}


@pytest.fixture(params=sorted(CACHES))
def cache(request: pytest.FixtureRequest) -> Cache:
    return CACHES[request.param](request)


def test_cache_set_get_delete(cache: Cache) -> None:
    assert cache.get("k") is None
    cache.set("k", b"v", 60)
    assert cache.get("k") == b"v"
    cache.delete("k")
    assert cache.get("k") is None


def test_cache_keeps_any_bytes(cache: Cache) -> None:
    value = bytes(range(256)) * 300  # every byte value, ~77 KB: a 20-year Parquet's size
    cache.set("bin", value, 60)
    assert cache.get("bin") == value


def test_cache_many_keeps_order_and_misses(cache: Cache) -> None:
    cache.set_many({"a": b"1", "c": b"3"}, 60)
    assert cache.get_many(["a", "b", "c"]) == [b"1", None, b"3"]
    assert cache.get_many([]) == []


def test_generations_only_move_forward(cache: Cache) -> None:
    assert cache.generations(["g"]) == [None]
    cache.advance("g", 5, 60)
    cache.advance("g", 3, 60)  # an older announcement arriving late changes nothing
    assert cache.generations(["g", "h"]) == [5, None]
    cache.advance("g", 7, 60)
    assert cache.generations(["g"]) == [7]
    big = 2**60 + 1  # beyond a double's 53 bits: compared exactly
    cache.advance("g", big, 60)
    cache.advance("g", big - 1, 60)
    assert cache.generations(["g"]) == [big]


def test_delete_prefix_takes_values_and_generations_under_it_only(cache: Cache) -> None:
    cache.set_many({"p:[x]*a": b"1", "p:[x]*b": b"2", "p:y": b"3", "q": b"4"}, 60)
    cache.advance("p:[x]*g", 9, 60)
    assert cache.delete_prefix("p:[x]*") == 3
    assert cache.get_many(["p:[x]*a", "p:[x]*b", "p:y", "q"]) == [None, None, b"3", b"4"]
    assert cache.generations(["p:[x]*g"]) == [None]


def test_shared_says_whether_other_processes_see_entries(cache: Cache) -> None:
    assert cache.shared is (not isinstance(cache, MemoryCache))


@pytest.mark.parametrize("kind", ["redis", "upstash"])
def test_shared_caches_store_ttls_and_survive_garbage_generations(
    kind: str, request: pytest.FixtureRequest, redis_url: str
) -> None:
    import redis

    cache = CACHES[kind](request)
    raw = redis.Redis.from_url(redis_url)
    cache.set("v", b"x", 60)
    cache.advance("g", 5, 30)
    assert 0 < raw.ttl("v") <= 60 and 0 < raw.ttl("g") <= 30
    raw.set("g", b"\xffnot a number")
    assert cache.generations(["g"]) == [None]  # garbage reads as unknown, not as an error
    cache.advance("g", 6, 30)
    assert cache.generations(["g"]) == [6]


def test_memory_cache_bounds_bytes() -> None:
    cache = MemoryCache(max_bytes=10)
    cache.set("a", b"12345", 60)
    cache.set("b", b"12345", 60)
    cache.set("c", b"1", 60)  # 11 bytes: the least recently used goes
    assert cache.get("a") is None and cache.get("b") == b"12345" and cache.get("c") == b"1"
    cache.set("huge", b"x" * 11, 60)  # never fits: not kept, nothing else evicted
    assert cache.get("huge") is None and cache.size_bytes == 6


def test_memory_cache_expires_and_bounds() -> None:
    now = [0.0]
    cache = MemoryCache(max_entries=2, clock=lambda: now[0])
    cache.set("a", b"1", 10)
    now[0] = 11
    assert cache.get("a") is None
    cache.set("a", b"1", 10)
    cache.set("b", b"2", 10)
    cache.get("a")
    cache.set("c", b"3", 10)  # evicts the least recently used: b
    assert cache.get("b") is None and cache.get("a") == b"1" and cache.get("c") == b"3"


def test_null_cache_never_hits() -> None:
    cache = NullCache()
    cache.set("k", b"v", 60)
    assert cache.get("k") is None
