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


CACHES: dict[str, Callable[[], Cache]] = {"memory": MemoryCache}


@pytest.fixture(params=sorted(CACHES))
def cache(request: pytest.FixtureRequest) -> Cache:
    return CACHES[request.param]()


def test_cache_set_get_delete(cache: Cache) -> None:
    assert cache.get("k") is None
    cache.set("k", b"v", 60)
    assert cache.get("k") == b"v"
    cache.delete("k")
    assert cache.get("k") is None


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
