"""Request pacing as pure arithmetic: the generic cell rate algorithm (GCRA), a token bucket
kept as one number.

Why GCRA: a bucket of `burst` tokens refilled at `rate` per second is exactly described by its
"theoretical arrival time" (tat): the instant at which the bucket would be full again. One
number per budget means one key in Redis, updated by one Lua script in one round trip, and the
same function here for the in-process pacer and for property tests.

Reservations, not polling: `reserve` grants a request a start time (now + wait) and moves tat
forward at once, so waiting callers are served in arrival order and nobody spins on Redis. A
reservation whose wait would exceed the caller's patience is refused and changes nothing.

The law (tested with hypothesis in tests/test_pacing.py): over any window of `w` seconds the
start times granted number at most `burst + w * rate`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    """A provider's request budget: `rate` requests per second, `burst` at once at most."""

    rate: float
    burst: int = 1

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"a budget's rate must be positive, got {self.rate}")
        if self.burst < 1:
            raise ValueError(f"a budget's burst must be at least 1, got {self.burst}")

    @classmethod
    def per_minute(cls, requests: float, burst: int = 1) -> Budget:
        return cls(requests / 60.0, burst)

    @property
    def interval(self) -> float:
        """Seconds one request costs."""
        return 1.0 / self.rate

    def scaled(self, share: float) -> Budget:
        """This budget cut to `share` of it (the per-instance fallback's slice); the burst is cut
        the same way, never below one request."""
        return Budget(self.rate * share, max(1, int(self.burst * share)))


@dataclass(frozen=True)
class Reservation:
    granted: bool
    wait: float  # seconds from now until the request may start (the wait refused, if refused)
    tat: float  # the bucket's new theoretical arrival time (unchanged when refused)


def reserve(
    tat: float | None, now: float, budget: Budget, cost: int = 1, max_wait: float = float("inf")
) -> Reservation:
    """Reserve `cost` requests at `now` against a bucket whose theoretical arrival time is
    `tat` (None: a full bucket). Granted: the requests may start after `wait` seconds."""
    if cost < 1:
        raise ValueError(f"cost must be at least 1, got {cost}")
    if cost > budget.burst:
        raise ValueError(f"cost {cost} exceeds the budget's burst {budget.burst}")
    base = now if tat is None or tat < now else tat
    new_tat = base + cost * budget.interval
    wait = max(0.0, new_tat - budget.burst * budget.interval - now)
    if wait > max_wait:
        return Reservation(False, wait, now if tat is None else tat)
    return Reservation(True, wait, new_tat)


def floor_minutes(requests: int, budget: Budget) -> float:
    """The least wall time `requests` can take under `budget`, in minutes."""
    return max(0, requests - budget.burst) / budget.rate / 60.0
