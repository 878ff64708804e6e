"""The shared request budget in Redis through redis-py (BARLAKE_PACER=redis, BARLAKE_REDIS_URL).

One key per provider holds the budget's GCRA state; one Lua script (redis_protocol.PACE_SCRIPT)
reads Redis's clock, reserves the request and answers how long to wait, atomically, in one
round trip: every instance and thread of the fleet draws from the same budget, and no two
reservations can overlap. The caller then sleeps locally (plus jitter); nobody polls Redis.

Every failure raises (no retries, `timeout_s` per socket operation): the resilient pacer
(resilient_pacer.py) decides what a failure means.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from barlake.adapters.memory_pacer import PacerPatienceExceeded, sleep_with_jitter
from barlake.adapters.redis_protocol import PACE_SCRIPT
from barlake.core.pacing import Budget

KEY_PREFIX = "barlake:pace:"


class ScriptPacer:
    """GCRA reservations through PACE_SCRIPT; subclasses say how the script is run."""

    name = "script"

    def __init__(
        self,
        budgets: Mapping[str, Budget],
        *,
        default: Budget | None = None,
        max_wait_s: float = 120.0,
        jitter_s: float = 0.0,
        namespace: str = "",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budgets = dict(budgets)
        self.default = default
        self.max_wait_s = max_wait_s
        self.jitter_s = jitter_s
        self.prefix = KEY_PREFIX + (f"{namespace}:" if namespace else "")
        self._sleep = sleep
        self.granted = 0  # requests this process let through (for progress displays)
        self.waited_s = 0.0

    def budget(self, provider: str) -> Budget | None:
        return self.budgets.get(provider, self.default)

    def _eval(self, key: str, args: list[int]) -> Any:
        raise NotImplementedError

    def reserve(self, provider: str, cost: int = 1) -> float:
        return self.reserve_slot(provider, cost)[0]

    def reserve_slot(self, provider: str, cost: int = 1) -> tuple[float, float]:
        """(seconds to wait, the reserved start on Redis's clock in seconds)."""
        budget = self.budget(provider)
        if budget is None:
            return 0.0, time.time()
        if not 1 <= cost <= budget.burst:
            raise ValueError(f"cost {cost} must be from 1 to the budget's burst {budget.burst}")
        args = [
            max(1, round(budget.interval * 1e6)),
            budget.burst,
            cost,
            round(self.max_wait_s * 1e6),
        ]
        answer = self._eval(self.prefix + provider, args)
        if not isinstance(answer, list | tuple) or len(answer) != 3:
            raise RuntimeError(f"pacing script answered {answer!r}")
        granted, wait_us, start_us = (int(a) for a in answer)
        if not granted:
            raise PacerPatienceExceeded(
                f"{provider}: the shared request budget is booked {wait_us / 1e6:.0f} s ahead "
                f"(patience {self.max_wait_s:.0f} s)"
            )
        return wait_us / 1e6, start_us / 1e6

    def acquire(self, provider: str, cost: int = 1) -> float:
        waited = sleep_with_jitter(self.reserve(provider, cost), self.jitter_s, self._sleep)
        self.granted += cost  # display counters: a lost update under threads is harmless
        self.waited_s += waited
        return waited


class RedisPacer(ScriptPacer):
    name = "redis"

    def __init__(
        self, url: str, budgets: Mapping[str, Budget], *, timeout_s: float = 0.5, **kw: Any
    ) -> None:
        super().__init__(budgets, **kw)
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._script = self.client.register_script(PACE_SCRIPT)

    def _eval(self, key: str, args: list[int]) -> Any:
        return self._script(keys=[key], args=args)

    def close(self) -> None:
        self.client.close()
