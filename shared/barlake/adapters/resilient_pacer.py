"""The shared budget as an ingest instance sees it: Redis/Upstash first, and a conservative
per-instance budget whenever the shared one cannot be reached.

Why a fallback and not a failure: a Redis outage must not stop the daily run, but it must not
let the fleet exceed the provider's limit either. So while the shared pacer fails (an error or
a timeout), this instance paces itself alone at the budget divided by `instances` (the most
ingest instances that may run: Terraform's ingest_max_instances), which keeps the whole fleet
within the budget even with every instance in fallback at once. A breaker, as for the cache
(resilient_cache.py): after a failure the shared pacer is skipped for a cool-off (1 s,
doubling to 30 s), then one probe is let through. Each incident is logged once at its start and
once at its end. "Patience exceeded" is not a failure of Redis: it propagates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from barlake.adapters.memory_pacer import MemoryPacer, PacerPatienceExceeded, sleep_with_jitter

log = logging.getLogger("barlake.pacer")

COOL_OFF_FIRST_S = 1.0
COOL_OFF_MAX_S = 30.0


@dataclass
class PacerStats:
    shared: int = 0  # reservations from the shared budget
    fallback: int = 0  # reservations from this instance's slice
    errors: int = 0
    incidents: int = 0
    waited_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ResilientPacer:
    name = "resilient"

    def __init__(
        self,
        shared: Any,
        *,
        instances: int,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        if instances < 1:
            raise ValueError(f"instances must be at least 1, got {instances}")
        self.shared = shared
        self.jitter_s = shared.jitter_s
        sleep = sleep or getattr(shared, "_sleep", time.sleep)
        share = 1.0 / instances
        self.fallback = MemoryPacer(
            {p: b.scaled(share) for p, b in shared.budgets.items()},
            default=shared.default.scaled(share) if shared.default else None,
            max_wait_s=shared.max_wait_s,
            clock=clock,
            sleep=sleep,
        )
        self.stats = PacerStats()
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._cool_off = 0.0
        self._down_since: float | None = None

    @property
    def granted(self) -> int:
        return self.stats.shared + self.stats.fallback

    @property
    def waited_s(self) -> float:
        return self.stats.waited_s

    @property
    def degraded(self) -> bool:
        return self._down_since is not None

    def reserve(self, provider: str, cost: int = 1) -> float:
        return self.reserve_slot(provider, cost)[0]

    def reserve_slot(self, provider: str, cost: int = 1) -> tuple[float, float]:
        """(seconds to wait, the reserved start): from the shared budget when it answers, else
        from this instance's slice (then the start is on this process's monotonic clock)."""
        if self._clock() >= self._open_until:
            try:
                slot = self.shared.reserve_slot(provider, cost)
            except PacerPatienceExceeded:
                self._recovered()  # Redis answered: it is up
                raise
            except Exception as exc:
                self._failed(exc)
            else:
                self._recovered()
                self.stats.shared += 1
                return slot
        self.stats.fallback += 1
        return self.fallback.reserve_slot(provider, cost)

    def acquire(self, provider: str, cost: int = 1) -> float:
        waited = sleep_with_jitter(self.reserve(provider, cost), self.jitter_s, self._sleep)
        self.stats.waited_s += waited
        return waited

    def _failed(self, exc: Exception) -> None:
        with self._lock:
            self.stats.errors += 1
            self._cool_off = min(COOL_OFF_MAX_S, max(COOL_OFF_FIRST_S, self._cool_off * 2))
            self._open_until = self._clock() + self._cool_off
            if self._down_since is None:
                self._down_since = self._clock()
                self.stats.incidents += 1
                log.warning(
                    "pacer: shared budget unreachable (%s: %s); pacing this instance alone "
                    "at its slice of the budget",
                    type(exc).__name__,
                    exc,
                )

    def _recovered(self) -> None:
        with self._lock:
            self._cool_off = 0.0
            if self._down_since is not None:
                log.warning(
                    "pacer: shared budget back after %.1f s", self._clock() - self._down_since
                )
                self._down_since = None
