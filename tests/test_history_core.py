"""The pure rules behind trustworthy history: core/history.py, core/plausibility.py and the
split views of core/adjust.py (the pipeline cases are in tests/test_history_cases.py)."""

from __future__ import annotations

from datetime import date

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barlake.core.adjust import adjust, unadjusted_splits
from barlake.core.history import diff_history, inferred_splits, reconcile, suspect_reason
from barlake.core.plausibility import outlier_mask, screen
from barlake.core.schema import actions_from_pylist, empty_actions
from conftest import bars, weekdays

DAYS = weekdays(date(2024, 2, 5), 12)  # Mon 02-05 .. Tue 02-20 (the core needs no calendar)


def series(prices: list[float], days: list[date] | None = None, volume: int = 100) -> pa.Table:
    days = days or DAYS[: len(prices)]
    return bars("AAA", [(d, p, p, p, p, p, volume) for d, p in zip(days, prices, strict=True)])


def test_diff_classifies_every_kind_of_difference() -> None:
    stored = series([10.0] * 10)
    rows = series([5.0] * 4 + [10.0] * 6).to_pylist()  # a 2:1 split after day 3
    for r in rows[:4]:
        r["volume"] = 200
    rows[5]["adj_close"] = 9.9  # a dividend
    rows[6]["close"] = 10.5  # a revision no ratio explains
    rows[6]["high"] = 10.5
    rows[7]["volume"] = 150  # a revised volume
    del rows[8]  # a stored day the provider lacks now
    del rows[0]  # and the provider's history now starts a day later
    fetched = pa.Table.from_pylist(rows, schema=stored.schema)
    diff = diff_history(stored, fetched, (DAYS[1], DAYS[9]))
    assert diff.kinds() == (
        "split",
        "dividend",
        "volume_revision",
        "close_revision",
        "missing",
        "provider_purge",
    )
    assert sorted(diff.scaled.values()) == [2.0, 2.0, 2.0]  # days 1-3 (day 0 is purged)
    ev = diff.evidence()
    assert ev["split_ratios"] == ["2:1"] and ev["missing_dates"] == [DAYS[8].isoformat()]
    assert ev["provider_purge_dates"] == [DAYS[0].isoformat()]


def test_suspect_answers_start_later_or_lack_many_stored_sessions() -> None:
    stored = series([10.0] * 12)
    later = diff_history(stored, series([10.0] * 10, DAYS[2:]))
    assert "starts at 2024-02-07" in (suspect_reason(later) or "")
    assert suspect_reason(later, confirmed_start=DAYS[2]) is None  # a confirmed purge
    gappy = diff_history(stored, series([10.0] * 6, DAYS[:1] + DAYS[7:]))
    assert "lacks 6 of the 12 stored sessions" in (suspect_reason(gappy) or "")
    few = diff_history(stored, series([10.0] * 11, DAYS[:5] + DAYS[6:]))
    assert suspect_reason(few) is None  # one missing day is kept, not suspect


def test_reconcile_keeps_missing_days_rescaled_and_holds_revisions_until_confirmed() -> None:
    stored = series([10.0] * 6)
    rows = series([5.0] * 6, volume=200).to_pylist()
    rows[4]["close"] = 5.5  # unexplained
    rows[4]["high"] = 5.5
    del rows[2]
    fetched = pa.Table.from_pylist(rows, schema=stored.schema)
    diff = diff_history(stored, fetched)
    got = reconcile(stored, fetched, diff)
    out = {r["date"]: r for r in got.bars.to_pylist()}
    assert len(out) == 6
    assert (out[DAYS[2]]["close"], out[DAYS[2]]["volume"]) == (5.0, 200)  # kept, rescaled
    assert out[DAYS[4]]["close"] == 5.0  # held: the stored bar, rescaled; pending
    assert list(got.pending) == [DAYS[4].isoformat()]
    again = reconcile(stored, fetched, diff, got.pending)
    assert again.confirmed == (int(pa.scalar(DAYS[4]).cast(pa.int32()).as_py()),)
    assert {r["date"]: r["close"] for r in again.bars.to_pylist()}[DAYS[4]] == 5.5


@settings(max_examples=60, deadline=None)
@given(
    st.sets(st.integers(0, 11), min_size=1),
    st.sets(st.integers(0, 11), min_size=1),
    st.sampled_from([1.0, 2.0, 0.25]),
)
def test_reconcile_never_loses_a_stored_or_fetched_day(
    stored_idx: set[int], fetched_idx: set[int], ratio: float
) -> None:
    s_days = [DAYS[i] for i in sorted(stored_idx)]
    f_days = [DAYS[i] for i in sorted(fetched_idx)]
    stored = series([10.0 + i for i in sorted(stored_idx)], s_days)
    fetched = series([(10.0 + i) / ratio for i in sorted(fetched_idx)], f_days)
    diff = diff_history(stored, fetched)
    got = set(reconcile(stored, fetched, diff).bars.column("date").to_pylist())
    assert got == set(s_days) | set(f_days)


def test_a_split_found_only_from_prices_is_inferred_the_day_after() -> None:
    stored = series([100.0, 100.0])
    fetched = series([5.0, 5.0, 5.0])
    diff = diff_history(stored, fetched)
    assert diff.scaled and "split" in diff.kinds()
    assert inferred_splits(diff, fetched, empty_actions()).to_pylist() == [
        {"symbol": "AAA", "date": DAYS[2], "kind": "split", "value": 20.0}
    ]
    only = series([5.0])
    diff = diff_history(series([100.0]), only)
    assert inferred_splits(diff, only, empty_actions()).to_pylist() == [
        {"symbol": "AAA", "date": date(2024, 2, 6), "kind": "split", "value": 20.0}
    ]
    known = actions_from_pylist("AAA", [(date(2024, 2, 6), "split", 20.0)])
    assert inferred_splits(diff, only, known).num_rows == 0


def test_a_spike_that_reverts_is_an_outlier_a_step_is_not() -> None:
    spike = series([10.0, 10.1, 10_100.0, 10.2, 10.1])
    assert outlier_mask(spike).tolist() == [False, False, True, False, False]
    step = series([10.0, 10.1, 101.0, 101.2, 101.1])
    assert not outlier_mask(step).any()
    split = actions_from_pylist("AAA", [(DAYS[3], "split", 0.001)])
    assert outlier_mask(spike, split).tolist() == [False] * 5  # a split explains it
    stored = series([10.0, 10.1, 10.2, 10.3])
    fetched = series([10.2, 10_300.0, 10.4, 10.5], DAYS[2:6])
    screened = screen(stored, fetched)
    assert [r["date"] for r in screened.outliers] == [DAYS[3]]
    assert screened.good.column("date").to_pylist() == [DAYS[2], DAYS[4], DAYS[5]]
    assert screened.outliers[0]["evidence"]["factor"] > 900


def test_adjust_none_undoes_only_the_splits_the_prices_reflect() -> None:
    split = actions_from_pylist("AAA", [(DAYS[2], "split", 10.0)])
    adjusted = series([10.0, 10.1, 10.2, 10.3])
    assert unadjusted_splits(adjusted, split) == []
    assert adjust(adjusted, split, "none").column("close").to_pylist() == pytest.approx(
        [100.0, 101.0, 10.2, 10.3]
    )
    raw = series([100.0, 101.0, 10.2, 10.3])
    (flag,) = unadjusted_splits(raw, split)
    assert (flag["date"], flag["ratio"], flag["close"]) == (DAYS[2].isoformat(), 10.0, 10.2)
    assert adjust(raw, split, "none").column("close").to_pylist() == [100.0, 101.0, 10.2, 10.3]
