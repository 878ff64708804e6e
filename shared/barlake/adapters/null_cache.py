"""The cache that caches nothing: every read goes to storage (BARLAKE_CACHE=none)."""

from __future__ import annotations


class NullCache:
    def get(self, key: str) -> bytes | None:
        return None

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        return None

    def delete(self, key: str) -> None:
        return None
