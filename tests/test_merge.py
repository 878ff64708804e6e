"""Merge laws (hypothesis) and restatement classification on real Yahoo recordings."""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from barlake.adapters.yahoo_chart import load_chart
from barlake.core.merge import (
    bars_equal,
    classify_overlap,
    merge_actions,
    merge_bars,
)
from barlake.core.schema import actions_from_pylist
from conftest import FIXTURES, bars, flat_bars, weekdays

EPOCH = date(2000, 1, 3)


@st.composite
def tables(draw: st.DrawFn, days: st.SearchStrategy | None = None) -> pa.Table:
    offsets = draw(days if days is not None else st.sets(st.integers(0, 60), max_size=25))
    rows = []
    for off in sorted(offsets):
        p = draw(st.floats(1, 1000, allow_nan=False, width=32))
        v = draw(st.integers(0, 10**9))
        rows.append((EPOCH + timedelta(days=off), p, p, p, p, p, v))
    return bars("T", rows)


def day_set(t: pa.Table) -> set[date]:
    return set(t.column("date").to_pylist())


@given(tables(), tables())
def test_merge_is_idempotent(a: pa.Table, b: pa.Table) -> None:
    once = merge_bars(a, b)
    assert bars_equal(merge_bars(once, b), once)


@given(tables(), tables())
def test_merge_never_loses_a_day_and_newer_wins(a: pa.Table, b: pa.Table) -> None:
    merged = merge_bars(a, b)
    assert day_set(merged) == day_set(a) | day_set(b)
    dates = merged.column("date").to_pylist()
    assert dates == sorted(set(dates))  # sorted, unique
    by_day = {r["date"]: r for r in merged.to_pylist()}
    for row in b.to_pylist():
        assert by_day[row["date"]] == row
    for row in a.to_pylist():
        if row["date"] not in day_set(b):
            assert by_day[row["date"]] == row


@given(st.data())
def test_merge_is_order_insensitive_on_disjoint_days(data: st.DataObject) -> None:
    a = data.draw(tables())
    all_days = data.draw(st.sets(st.integers(0, 60), max_size=30))
    split = (
        data.draw(st.sets(st.sampled_from(sorted(all_days)), max_size=len(all_days)))
        if all_days
        else set()
    )
    b = data.draw(tables(st.just(split)))
    c = data.draw(tables(st.just(all_days - split)))
    assert bars_equal(merge_bars(merge_bars(a, b), c), merge_bars(merge_bars(a, c), b))


def test_merge_fast_path_appends_and_slow_path_interleaves() -> None:
    days = weekdays(date(2024, 1, 1), 10)
    stored = flat_bars("T", days[:8], 10.0)
    tail = flat_bars("T", days[5:], 11.0)  # overlaps 3 stored days, adds 2
    merged = merge_bars(stored, tail)
    assert merged.column("date").to_pylist() == days
    assert merged.column("close").to_pylist() == [10.0] * 5 + [11.0] * 5
    # A fetched day in the middle of a hole (a backfill of one missing day).
    holey = flat_bars("T", days[:3] + days[4:], 10.0)
    merged = merge_bars(holey, flat_bars("T", [days[3]], 12.0))
    assert merged.column("date").to_pylist() == days
    assert merged.column("close").to_pylist()[3] == 12.0


def test_merge_actions_union_newer_value_wins() -> None:
    old = actions_from_pylist(
        "T", [(date(2024, 1, 2), "dividend", 0.5), (date(2024, 2, 1), "split", 2.0)]
    )
    new = actions_from_pylist(
        "T", [(date(2024, 1, 2), "dividend", 0.55), (date(2024, 3, 1), "dividend", 0.6)]
    )
    merged = merge_actions(old, new)
    assert [(r["date"], r["kind"], r["value"]) for r in merged.to_pylist()] == [
        (date(2024, 1, 2), "dividend", 0.55),
        (date(2024, 2, 1), "split", 2.0),
        (date(2024, 3, 1), "dividend", 0.6),
    ]


# ----------------------------------------------------------------- restatements, real data

REST = FIXTURES / "restatements"


def rec(path: str) -> pa.Table:
    recording = load_chart(REST / path)
    assert recording.bars is not None
    return recording.bars


@pytest.mark.parametrize(
    ("folder", "ratio", "fraction"),
    [("GOOG_split_20for1_2022", 20.0, "20:1"), ("AMZN_split_20for1_2022", 20.0, "20:1")],
)
def test_split_is_classified_with_its_ratio(folder: str, ratio: float, fraction: str) -> None:
    name = "chart-" + folder.split("_")[0] + "-2020-01-01-to-2020-01-03.json"
    before = rec(f"{folder}/recorded-2021-11-21/{name}")
    after = rec(f"{folder}/recorded-2025-02-20/{name}")
    found = classify_overlap(before, after)
    assert found is not None and found.kinds[0] == "split"
    assert found.evidence["split"] == fraction
    assert found.evidence["split_ratio"] == pytest.approx(ratio, rel=1e-6)
    assert found.needs_full_refetch
    # GOOG paid dividends from 2024: its adj close moved beyond the split as well; AMZN did not.
    assert ("dividend" in found.kinds) == folder.startswith("GOOG")
    assert "volume_revision" not in found.kinds  # volume ×20 exactly, as the split says


def test_aapl_adj_close_restatement_is_a_dividend() -> None:
    name = "chart-AAPL-2020-08-31-to-2020-11-07.json"
    before = rec(f"AAPL_adjclose_2020-08-31_to_2020-11-07/recorded-2021-11-22/{name}")
    after = rec(f"AAPL_adjclose_2020-08-31_to_2020-11-07/recorded-2025-02-20/{name}")
    found = classify_overlap(before, after)
    assert found is not None and found.kinds == ("dividend",)
    # SOURCES.md: adjclose restated ×0.9828 on every bar (2020-08-31: 128.028 → 125.827).
    assert found.evidence["adj_close_factor"] == pytest.approx(125.827 / 128.028, rel=2e-4)


def test_msft_dividend_and_volume_revision() -> None:
    before = rec("MSFT_dividend_2025-08-21/recorded-2025-08-15_after-close/history_chart_MSFT.json")
    after = rec("MSFT_dividend_2025-08-21/recorded-2025-08-25_after-close/history_chart_MSFT.json")
    found = classify_overlap(before, after)
    assert found is not None and found.kinds == ("dividend", "volume_revision")
    assert found.evidence["overlap_days"] == 119
    assert found.evidence["adj_close_factor"] == pytest.approx(0.998359, abs=2e-6)
    assert found.evidence["volume_changes"] == [
        {"date": "2025-08-15", "stored": 25_191_800, "fetched": 25_213_300}
    ]


def test_same_recording_twice_is_no_restatement() -> None:
    aapl = rec(
        "AAPL_adjclose_2020-08-31_to_2020-11-07/recorded-2025-02-20/chart-AAPL-2020-08-31-to-2020-11-07.json"
    )
    assert classify_overlap(aapl, aapl) is None


def test_float32_noise_is_not_a_restatement() -> None:
    days = weekdays(date(2024, 1, 1), 5)
    a = flat_bars("T", days, 100.0)
    b = flat_bars("T", days, float(pa.scalar(100.0 + 6e-6, pa.float32()).as_py()))  # ~1 ulp
    assert classify_overlap(a, b) is None


def test_single_changed_price_is_other() -> None:
    days = weekdays(date(2024, 1, 1), 5)
    a = flat_bars("T", days, 100.0)
    rows = a.to_pylist()
    rows[2]["close"] = rows[2]["high"] = 101.0
    found = classify_overlap(a, pa.Table.from_pylist(rows, schema=a.schema))
    assert found is not None and found.kinds == ("other",)
    assert found.evidence["price_changed_days"] == [days[2].isoformat()]


def test_volume_only_revision_does_not_need_full_refetch() -> None:
    days = weekdays(date(2024, 1, 1), 5)
    a = flat_bars("T", days, 100.0, volume=1000)
    b = flat_bars("T", days, 100.0, volume=1000).to_pylist()
    b[-1]["volume"] = 1234
    found = classify_overlap(a, pa.Table.from_pylist(b, schema=a.schema))
    assert found is not None and found.kinds == ("volume_revision",)
    assert not found.needs_full_refetch


@st.composite
def ohlc_tables(draw: st.DrawFn) -> pa.Table:
    """Realistic, non-flat bars: float32 prices, open/close inside [low, high]."""
    n = draw(st.integers(1, 15))
    rows = []
    for i in range(n):
        low = draw(st.floats(1, 500, width=32))
        high = float(pa.scalar(low * draw(st.floats(1.0, 1.2)), pa.float32()).as_py())
        o = draw(st.floats(low, high, width=32))
        c = draw(st.floats(low, high, width=32))
        adj = float(pa.scalar(c * draw(st.floats(0.5, 1.0)), pa.float32()).as_py())
        rows.append((EPOCH + timedelta(days=i), o, high, low, c, adj, draw(st.integers(1, 10**9))))
    return bars("T", rows)


def scaled(t: pa.Table, price: float, adj: float, volume: float) -> pa.Table:
    rows = t.to_pylist()
    for r in rows:
        for c in ("open", "high", "low", "close"):
            r[c] = float(
                pa.scalar(r[c] / price, pa.float32()).as_py()
            )  # Yahoo re-rounds to float32
        r["adj_close"] = float(pa.scalar(r["adj_close"] / price * adj, pa.float32()).as_py())
        r["volume"] = round(r["volume"] * volume)
    return pa.Table.from_pylist(rows, schema=t.schema)


@given(ohlc_tables(), st.sampled_from([2.0, 3.0, 4.0, 10.0, 20.0, 0.5, 0.2, 1.5]))
def test_any_split_of_any_history_is_classified_with_its_ratio(t: pa.Table, ratio: float) -> None:
    found = classify_overlap(t, scaled(t, ratio, 1.0, ratio))
    assert found is not None and found.kinds == ("split",)
    assert found.evidence["split_ratio"] == pytest.approx(ratio, rel=1e-5)


@given(ohlc_tables(), st.floats(0.90, 0.9999))
def test_any_dividend_rescaling_is_classified_as_dividend(t: pa.Table, factor: float) -> None:
    found = classify_overlap(t, scaled(t, 1.0, factor, 1.0))
    assert found is not None and found.kinds == ("dividend",)
    assert found.evidence["adj_close_factor"] == pytest.approx(factor, rel=1e-5)


@given(ohlc_tables())
def test_a_history_is_never_a_restatement_of_itself(t: pa.Table) -> None:
    assert classify_overlap(t, t) is None
