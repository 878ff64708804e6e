"""The pacing law, as hypothesis properties of the pure GCRA (barlake.core.pacing)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barlake.core.pacing import Budget, floor_minutes, reserve


def _window_law(starts: list[float], budget: Budget) -> None:
    """In any window [starts[i], starts[j]]: j - i + 1 ≤ burst + width × rate."""
    starts = sorted(starts)
    for i in range(len(starts)):
        for j in range(i, len(starts)):
            width = starts[j] - starts[i]
            assert j - i + 1 <= budget.burst + width * budget.rate + 1e-6, (i, j, width)


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(0.1, 50),
    burst=st.integers(1, 5),
    gaps=st.lists(st.floats(0, 3), min_size=1, max_size=40),
    costs=st.data(),
)
def test_granted_starts_never_exceed_the_budget(
    rate: float, burst: int, gaps: list[float], costs: st.DataObject
) -> None:
    budget = Budget(rate, burst)
    tat, now, starts = None, 0.0, []
    for gap in gaps:
        now += gap
        cost = costs.draw(st.integers(1, burst))
        r = reserve(tat, now, budget, cost)
        assert r.granted and r.wait >= 0
        tat = r.tat
        starts.extend([now + r.wait] * cost)
    _window_law(starts, budget)


@settings(max_examples=200, deadline=None)
@given(rate=st.floats(0.1, 50), n=st.integers(1, 30), patience=st.floats(0, 5))
def test_a_refused_reservation_changes_nothing(rate: float, n: int, patience: float) -> None:
    budget = Budget(rate)
    tat = None
    for _ in range(n):
        r = reserve(tat, 0.0, budget, 1, max_wait=patience)
        if not r.granted:
            assert r.wait > patience
            assert r.tat == (0.0 if tat is None else tat)
            assert reserve(tat, 0.0, budget, 1, max_wait=patience) == r  # still refused
            return
        assert r.wait <= patience
        tat = r.tat


def test_a_burst_starts_at_once_then_the_rate_holds() -> None:
    budget = Budget.per_minute(60, burst=3)
    tat, waits = None, []
    for _ in range(6):
        r = reserve(tat, 100.0, budget)
        tat = r.tat
        waits.append(round(r.wait, 9))
    assert waits == [0, 0, 0, 1, 2, 3]
    # an idle bucket refills to its burst, never beyond
    later = reserve(tat, 1000.0, budget)
    assert later.wait == 0 and later.tat == 1001.0


def test_bad_budgets_and_costs_are_refused() -> None:
    with pytest.raises(ValueError, match="rate"):
        Budget(0)
    with pytest.raises(ValueError, match="burst"):
        Budget(1, 0)
    with pytest.raises(ValueError, match="exceeds"):
        reserve(None, 0, Budget(1, 2), cost=3)
    assert floor_minutes(3601, Budget.per_minute(60)) == 60.0
