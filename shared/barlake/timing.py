"""Where a function's time goes: provider fetches, object-store calls, state-store calls.

`Timed(adapter, kind)` forwards every method call and adds its wall time to a per-thread
tally (functions-framework serves several events at once on threads, so a per-event figure
must be per thread). `cloudfn` reads the tally around each event and logs it: `fetch_ms`,
`storage_ms`, `state_ms`, `bus_ms`, and the rest of `ms` is our own compute (validate, merge,
encode, aggregate). The pipeline bench sums those log fields.
"""

from __future__ import annotations

import threading
import time
from typing import Any

_tally = threading.local()


def _add(kind: str, seconds: float) -> None:
    totals: dict[str, float] = _tally.__dict__.setdefault("totals", {})
    totals[kind] = totals.get(kind, 0.0) + seconds


def snapshot() -> dict[str, float]:
    """This thread's seconds per kind so far (subtract two snapshots for one event)."""
    return dict(_tally.__dict__.get("totals", {}))


def since(before: dict[str, float]) -> dict[str, float]:
    now = snapshot()
    return {kind: now[kind] - before.get(kind, 0.0) for kind in now}


class Timed:
    """A transparent proxy that times every method call of the wrapped adapter."""

    def __init__(self, inner: Any, kind: str) -> None:
        self._inner = inner
        self._kind = kind

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._inner, name)
        if not callable(value):
            return value
        kind = self._kind

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return value(*args, **kwargs)
            finally:
                _add(kind, time.perf_counter() - start)

        return timed


def wrap(adapter: Any, kind: str) -> Any:
    return Timed(adapter, kind)
