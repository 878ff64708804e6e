"""Cache on Upstash Redis through its REST API and the official `upstash-redis` client
(BARLAKE_CACHE=upstash, BARLAKE_UPSTASH_URL, BARLAKE_UPSTASH_TOKEN from Secret Manager).

REST answers are JSON, and the client decodes every string result as UTF-8 text, so values
travel base64-encoded (ASCII) and the REST layer's own base64 encoding is switched off
(`rest_encoding=None`): one encoding instead of two.

The client is built for a request path: no retries (its default retry sleeps 3 s), no
telemetry, and a timeout — the client's httpx session has none by default, so it is replaced
with one that has (the client exposes no option for it). Every failure raises; the resilient
wrapper (resilient_cache.py) decides what it means for a request.

Read-your-writes across processes: the writer (ingest) and the reader (api) are different
clients. A regional Upstash database answers both from its primary; a Global database may
serve a reader from a replica a few milliseconds behind — pick regional for the API's cache.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import httpx
from upstash_redis import Redis

from barlake.adapters.redis_protocol import (
    ADVANCE_SCRIPT,
    SCAN_COUNT,
    check_generation,
    parse_generation,
    scan_pattern,
)


class UpstashCorruptValue(ValueError):
    """A value that is not the base64 text this adapter writes."""


def _decode(raw: Any) -> bytes | None:
    """A stored value's bytes. Text that is not base64 was not written by this adapter: it is
    returned as it is (its bytes), for the caller's integrity check to refuse."""
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise UpstashCorruptValue(f"expected a string, got {type(raw).__name__}")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return raw.encode("utf-8", "surrogateescape")


class UpstashCache:
    shared = True
    name = "upstash"

    def __init__(self, url: str, token: str, timeout_s: float = 0.05) -> None:
        self.client = Redis(url, token, rest_encoding=None, rest_retries=0, allow_telemetry=False)
        http = self.client._http  # no public timeout option: see the module docstring
        http._client.close()
        http._client = httpx.Client(timeout=httpx.Timeout(timeout_s))

    def _exec(self, command: list[Any]) -> Any:
        return self.client.execute(command)

    def get(self, key: str) -> bytes | None:
        return _decode(self._exec(["GET", key]))

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        values = self._exec(["MGET", *keys])
        if not isinstance(values, list) or len(values) != len(keys):
            raise UpstashCorruptValue("MGET answered with the wrong shape")
        return [_decode(v) if isinstance(v, str | None) else b"" for v in values]

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        self._exec(["SET", key, base64.b64encode(value).decode("ascii"), "EX", ttl_seconds])

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None:
        if not items:
            return
        pipe = self.client.pipeline()
        for key, value in items.items():
            pipe.execute(["SET", key, base64.b64encode(value).decode("ascii"), "EX", ttl_seconds])
        pipe.exec()

    def delete(self, key: str) -> None:
        self._exec(["DEL", key])

    def delete_prefix(self, prefix: str) -> int:
        deleted, cursor, pattern = 0, 0, scan_pattern(prefix)
        while True:
            cursor, keys = self._exec(["SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT])
            if keys:
                deleted += int(self._exec(["UNLINK", *keys]))
            if int(cursor) == 0:
                return deleted

    def generations(self, keys: Sequence[str]) -> list[int | None]:
        if not keys:
            return []
        values = self._exec(["MGET", *keys])
        if not isinstance(values, list) or len(values) != len(keys):
            raise UpstashCorruptValue("MGET answered with the wrong shape")
        return [parse_generation(v) if isinstance(v, str | None) else None for v in values]

    def advance(self, key: str, generation: int, ttl_seconds: int) -> None:
        self._exec(["EVAL", ADVANCE_SCRIPT, 1, key, check_generation(generation), ttl_seconds])

    def ping(self) -> None:
        if self._exec(["PING"]) not in ("PONG", b"PONG"):
            raise UpstashCorruptValue("PING did not answer PONG")

    def close(self) -> None:
        self.client.close()
