"""Cache on plain Redis through redis-py: Memorystore, or any self-hosted Redis
(BARLAKE_CACHE=redis, BARLAKE_REDIS_URL=redis://host:6379/0, rediss:// for TLS).

Honest about failure: every error raises (timeouts included, after `timeout_s` per socket
operation and no retries). The resilient wrapper (resilient_cache.py) decides what a failure
means for a request; this adapter only talks to Redis.
"""

from __future__ import annotations

import queue
from collections.abc import Mapping, Sequence
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from barlake.adapters.redis_protocol import (
    ADVANCE_SCRIPT,
    SCAN_COUNT,
    check_generation,
    parse_generation,
    scan_pattern,
)


class RedisCache:
    shared = True
    name = "redis"

    def __init__(self, url: str, timeout_s: float = 0.05) -> None:
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),  # redis-py retries 3 times by default: a stall
            health_check_interval=0,
        )
        self._advance = self.client.register_script(ADVANCE_SCRIPT)
        self._idle: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def _read(self, *command: str) -> Any:
        """One read command on a connection of our own: the request path's GET/MGET skip the
        client's pool and per-command bookkeeping (a third of redis-py's CPU per call)."""
        try:
            conn = self._idle.get_nowait()
        except queue.Empty:
            conn = self.client.connection_pool.make_connection()
        try:
            conn.send_command(*command)
            reply = conn.read_response()
        except BaseException:
            conn.disconnect()  # its state is unknown: never reuse it
            raise
        self._idle.put(conn)
        return reply

    def get(self, key: str) -> bytes | None:
        return self._read("GET", key)  # type: ignore[no-any-return]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return list(self._read("MGET", *keys)) if keys else []

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self.client.set(key, value, ex=ttl_seconds)

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None:
        if not items:
            return
        pipe = self.client.pipeline(transaction=False)
        for key, value in items.items():
            pipe.set(key, value, ex=ttl_seconds)
        pipe.execute()

    def delete(self, key: str) -> None:
        self.client.delete(key)

    def delete_prefix(self, prefix: str) -> int:
        deleted = 0
        batch: list[bytes] = []
        for key in self.client.scan_iter(match=scan_pattern(prefix), count=SCAN_COUNT):
            batch.append(key)  # type: ignore[arg-type]
            if len(batch) >= SCAN_COUNT:
                deleted += int(self.client.unlink(*batch))  # type: ignore[arg-type]
                batch = []
        if batch:
            deleted += int(self.client.unlink(*batch))  # type: ignore[arg-type]
        return deleted

    def generations(self, keys: Sequence[str]) -> list[int | None]:
        return [parse_generation(v) for v in self.get_many(keys)]

    def advance(self, key: str, generation: int, ttl_seconds: int) -> None:
        self._advance(keys=[key], args=[check_generation(generation), ttl_seconds])

    def ping(self) -> None:
        self.client.ping()

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().disconnect()
        self.client.close()
