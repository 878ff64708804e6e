"""The shared request budget on Upstash Redis over REST (BARLAKE_PACER=upstash, with
BARLAKE_UPSTASH_URL and BARLAKE_UPSTASH_TOKEN): the same Lua script as the Redis pacer
(redis_protocol.PACE_SCRIPT), sent with EVAL through the official `upstash-redis` client, no
retries and a real timeout (see upstash_cache.py for why the client's session is replaced).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
from upstash_redis import Redis

from barlake.adapters.redis_pacer import ScriptPacer
from barlake.adapters.redis_protocol import PACE_SCRIPT
from barlake.core.pacing import Budget


class UpstashPacer(ScriptPacer):
    name = "upstash"

    def __init__(
        self,
        url: str,
        token: str,
        budgets: Mapping[str, Budget],
        *,
        timeout_s: float = 0.5,
        **kw: Any,
    ) -> None:
        super().__init__(budgets, **kw)
        self.client = Redis(url, token, rest_encoding=None, rest_retries=0, allow_telemetry=False)
        http = self.client._http  # no public timeout option
        http._client.close()
        http._client = httpx.Client(timeout=httpx.Timeout(timeout_s))

    def _eval(self, key: str, args: list[int]) -> Any:
        return self.client.execute(["EVAL", PACE_SCRIPT, 1, key, *args])

    def close(self) -> None:
        self.client.close()
