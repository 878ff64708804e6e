"""The cache that caches nothing: every read goes to storage (BARLAKE_CACHE=none)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class NullCache:
    shared = False

    def get(self, key: str) -> bytes | None:
        return None

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [None] * len(keys)

    def set(self, key: str, value: bytes, ttl_seconds: int) -> None:
        return None

    def set_many(self, items: Mapping[str, bytes], ttl_seconds: int) -> None:
        return None

    def delete(self, key: str) -> None:
        return None

    def delete_prefix(self, prefix: str) -> int:
        return 0

    def generations(self, keys: Sequence[str]) -> list[int | None]:
        return [None] * len(keys)

    def advance(self, key: str, generation: int, ttl_seconds: int) -> None:
        return None
