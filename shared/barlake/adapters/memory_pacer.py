"""The in-process pacer: one GCRA bucket per provider in this process (BARLAKE_PACER=memory).

The embedded lake's pacer (one process is the whole fleet), and the resilient pacer's
fallback when the shared budget (Redis/Upstash) cannot be reached: then it is given a slice
of the budget (budget ÷ the most instances that may run), so the fleet as a whole still stays
within the provider's limit while Redis is down.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping

from barlake.core.pacing import Budget, reserve
from barlake.ports import TransientError


class PacerPatienceExceeded(TransientError):
    """The budget's queue is longer than the caller's patience: retry the batch later."""


class MemoryPacer:
    name = "memory"

    def __init__(
        self,
        budgets: Mapping[str, Budget],
        *,
        default: Budget | None = None,
        max_wait_s: float = 120.0,
        jitter_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.budgets = dict(budgets)
        self.default = default
        self.max_wait_s = max_wait_s
        self.jitter_s = jitter_s
        self._clock, self._sleep = clock, sleep
        self._tats: dict[str, float | None] = {}
        self._lock = threading.Lock()
        self.granted = 0  # requests let through (for progress displays)
        self.waited_s = 0.0  # seconds callers slept for the budget

    def budget(self, provider: str) -> Budget | None:
        return self.budgets.get(provider, self.default)

    def reserve(self, provider: str, cost: int = 1) -> float:
        """Reserve without sleeping; the seconds the caller must wait (raises when too long)."""
        return self.reserve_slot(provider, cost)[0]

    def reserve_slot(self, provider: str, cost: int = 1) -> tuple[float, float]:
        """(seconds to wait, the reserved start on this pacer's clock)."""
        budget = self.budget(provider)
        now = self._clock()
        if budget is None:
            return 0.0, now
        with self._lock:
            now = self._clock()
            r = reserve(self._tats.get(provider), now, budget, cost, self.max_wait_s)
            if r.granted:
                self._tats[provider] = r.tat
        if not r.granted:
            raise PacerPatienceExceeded(
                f"{provider}: the request budget is booked {r.wait:.0f} s ahead "
                f"(patience {self.max_wait_s:.0f} s)"
            )
        return r.wait, now + r.wait

    def acquire(self, provider: str, cost: int = 1) -> float:
        waited = sleep_with_jitter(self.reserve(provider, cost), self.jitter_s, self._sleep)
        with self._lock:
            self.granted += cost
            self.waited_s += waited
        return waited


def sleep_with_jitter(wait: float, jitter_s: float, sleep: Callable[[float], None]) -> float:
    """Sleep the reserved wait plus a random jitter (only ever later: a jitter can never
    break the budget). Returns the seconds slept."""
    total = wait + (random.uniform(0.0, jitter_s) if jitter_s > 0 else 0.0)
    if total > 0:
        sleep(total)
    return total
