"""Unit and property tests for barlake.core.aggregate (weekly/monthly bars from daily bars).

Expected values are written by hand (unit tests) or come from a deliberately naive pure-Python
reference built on `datetime` (property tests), never from `aggregate` itself: the reference
groups with `date.weekday()` / `date.replace(day=1)`, the code under test with integer
arithmetic on days since epoch, so a slip in either shows up as a disagreement.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barlake.core.aggregate import aggregate
from barlake.core.schema import BAR_SCHEMA, PERIOD_SCHEMA, bars_from_pylist

D = date.fromisoformat


def bar(
    day: str, o: float, h: float, lo: float, c: float, v: int, adj: float | None = None
) -> dict:
    return {
        "date": D(day),
        "open": o,
        "high": h,
        "low": lo,
        "close": c,
        "adj_close": c if adj is None else adj,
        "volume": v,
    }


def rows(table: pa.Table) -> list[dict]:
    return table.to_pylist()


# ---------------------------------------------------------------------------------------------
# Handmade weeks and months
# ---------------------------------------------------------------------------------------------

# Two weeks of January 2024; Monday 2024-01-15 (Martin Luther King Day) is a holiday.
TWO_WEEKS = bars_from_pylist(
    "AAPL",
    [
        bar("2024-01-08", 10.0, 11.0, 9.5, 10.5, 100, adj=10.4),
        bar("2024-01-09", 10.5, 12.0, 10.0, 11.0, 200, adj=10.9),
        bar("2024-01-10", 11.0, 11.5, 9.0, 9.8, 300, adj=9.7),
        bar("2024-01-11", 9.8, 10.2, 9.6, 10.0, 400, adj=9.9),
        bar("2024-01-12", 10.0, 10.8, 9.9, 10.6, 500, adj=10.5),
        # Monday 2024-01-15 closed
        bar("2024-01-16", 20.0, 21.0, 19.0, 20.5, 10, adj=20.4),
        bar("2024-01-17", 20.5, 22.5, 20.0, 22.0, 20, adj=21.9),
        bar("2024-01-18", 22.0, 22.2, 18.5, 19.0, 30, adj=18.9),
        bar("2024-01-19", 19.0, 19.5, 18.8, 19.2, 40, adj=19.1),
    ],
)


def test_weeks_with_a_monday_holiday_are_labelled_by_the_monday() -> None:
    got = rows(aggregate(TWO_WEEKS, "1wk", None))
    assert got == [
        {
            "symbol": "AAPL",
            "date": D("2024-01-08"),
            "open": 10.0,
            "high": 12.0,
            "low": 9.0,
            "close": 10.6,
            "adj_close": 10.5,
            "volume": 1500,
            "sessions": 5,
            "provisional": False,
        },
        {
            "symbol": "AAPL",
            "date": D("2024-01-15"),  # the holiday Monday, as Yahoo labels it
            "open": 20.0,  # Tuesday's open: no phantom bar for the holiday
            "high": 22.5,
            "low": 18.5,
            "close": 19.2,
            "adj_close": 19.1,
            "volume": 100,
            "sessions": 4,
            "provisional": False,
        },
    ]


# Wednesday 2024-01-31 → Friday 2024-02-02: one week, two months.
ACROSS_MONTH_END = bars_from_pylist(
    "X",
    [
        bar("2024-01-29", 1.0, 1.5, 0.9, 1.2, 1),
        bar("2024-01-30", 1.2, 1.3, 1.1, 1.25, 2),
        bar("2024-01-31", 1.25, 2.0, 1.2, 1.9, 4),
        bar("2024-02-01", 1.9, 1.95, 0.5, 0.7, 8),
        bar("2024-02-02", 0.7, 0.8, 0.6, 0.75, 16),
    ],
)


def test_a_month_boundary_inside_a_week_splits_months_but_not_the_week() -> None:
    week = rows(aggregate(ACROSS_MONTH_END, "1wk", None))
    assert [(r["date"], r["open"], r["high"], r["low"], r["close"], r["volume"], r["sessions"])
            for r in week] == [(D("2024-01-29"), 1.0, 2.0, 0.5, 0.75, 31, 5)]  # fmt: skip

    months = rows(aggregate(ACROSS_MONTH_END, "1mo", None))
    assert [(r["date"], r["open"], r["high"], r["low"], r["close"], r["volume"], r["sessions"])
            for r in months] == [
        (D("2024-01-01"), 1.0, 2.0, 0.9, 1.9, 7, 3),
        (D("2024-02-01"), 1.9, 1.95, 0.5, 0.75, 24, 2),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("complete_through", "expected"),
    [
        (None, [False, False]),
        (D("2024-01-19"), [False, True]),  # Friday: a session may still come before Sunday
        (D("2024-01-20"), [False, True]),
        (D("2024-01-21"), [False, False]),  # the week's Sunday: the week is complete
        (D("2024-01-14"), [False, True]),  # the first week's Sunday
        (D("2024-01-13"), [True, True]),
        (D("2030-01-01"), [False, False]),
    ],
)
def test_weekly_provisional_flags(complete_through: date | None, expected: list[bool]) -> None:
    got = aggregate(TWO_WEEKS, "1wk", complete_through).column("provisional").to_pylist()
    assert got == expected


@pytest.mark.parametrize(
    ("complete_through", "expected"),
    [
        (None, [False, False]),
        (D("2024-01-30"), [True, True]),
        (D("2024-01-31"), [False, True]),
        (D("2024-02-28"), [False, True]),  # 2024 is a leap year: February ends on the 29th
        (D("2024-02-29"), [False, False]),
    ],
)
def test_monthly_provisional_flags(complete_through: date | None, expected: list[bool]) -> None:
    got = aggregate(ACROSS_MONTH_END, "1mo", complete_through).column("provisional").to_pylist()
    assert got == expected


@pytest.mark.parametrize("interval", ["1wk", "1mo"])
def test_empty_input_gives_an_empty_period_table(interval: str) -> None:
    got = aggregate(BAR_SCHEMA.empty_table(), interval, D("2024-01-01"))
    assert got.num_rows == 0
    assert got.schema == PERIOD_SCHEMA


@pytest.mark.parametrize("interval", ["1wk", "1mo"])
def test_output_schema_is_period_schema(interval: str) -> None:
    assert aggregate(TWO_WEEKS, interval, D("2024-01-19")).schema == PERIOD_SCHEMA


def test_weekend_sessions_belong_to_the_week_that_started_on_the_monday_before() -> None:
    """NSE's Saturday budget session (2025-02-01) and crypto's Sundays: a week runs Mon-Sun."""
    bars = bars_from_pylist(
        "BTC-USD",
        [
            bar("2025-01-31", 1.0, 1.0, 1.0, 1.0, 1),  # Friday
            bar("2025-02-01", 2.0, 2.0, 2.0, 2.0, 2),  # Saturday
            bar("2025-02-02", 3.0, 3.0, 3.0, 3.0, 4),  # Sunday
            bar("2025-02-03", 4.0, 4.0, 4.0, 4.0, 8),  # Monday
        ],
    )
    week = rows(aggregate(bars, "1wk", None))
    assert [(r["date"], r["open"], r["close"], r["volume"]) for r in week] == [
        (D("2025-01-27"), 1.0, 3.0, 7),
        (D("2025-02-03"), 4.0, 4.0, 8),
    ]
    month = rows(aggregate(bars, "1mo", None))
    assert [(r["date"], r["open"], r["volume"]) for r in month] == [
        (D("2025-01-01"), 1.0, 1),
        (D("2025-02-01"), 2.0, 14),  # February opens on the Saturday session
    ]


def test_dates_before_1970_are_labelled_correctly() -> None:
    """Day numbers are negative before the epoch; floor modulo must still find the Monday."""
    bars = bars_from_pylist(
        "IBM",
        [
            bar("1969-12-28", 1.0, 1.0, 1.0, 1.0, 1),  # Sunday
            bar("1969-12-29", 2.0, 2.0, 2.0, 2.0, 1),  # Monday
            bar("1969-12-31", 3.0, 3.0, 3.0, 3.0, 1),  # Wednesday
            bar("1970-01-01", 4.0, 4.0, 4.0, 4.0, 1),  # Thursday (day 0)
            bar("1970-01-05", 5.0, 5.0, 5.0, 5.0, 1),  # Monday
        ],
    )
    weeks = aggregate(bars, "1wk", None)
    assert weeks.column("date").to_pylist() == [D("1969-12-22"), D("1969-12-29"), D("1970-01-05")]
    assert weeks.column("sessions").to_pylist() == [1, 3, 1]
    months = aggregate(bars, "1mo", None)
    assert months.column("date").to_pylist() == [D("1969-12-01"), D("1970-01-01")]
    assert months.column("sessions").to_pylist() == [3, 2]


def test_unsorted_input_is_sorted_first() -> None:
    shuffled = TWO_WEEKS.take(pa.array([8, 0, 5, 3, 1, 7, 2, 6, 4]))
    assert aggregate(shuffled, "1wk", D("2024-01-19")).equals(
        aggregate(TWO_WEEKS, "1wk", D("2024-01-19"))
    )


def test_multi_chunk_input() -> None:
    chunked = pa.concat_tables([TWO_WEEKS.slice(0, 3), TWO_WEEKS.slice(3, 4), TWO_WEEKS.slice(7)])
    assert chunked.column("open").num_chunks == 3
    assert aggregate(chunked, "1wk", None).equals(aggregate(TWO_WEEKS, "1wk", None))


def test_unknown_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown interval"):
        aggregate(TWO_WEEKS, "1d", None)


def test_repeated_dates_are_refused() -> None:
    doubled = pa.concat_tables([TWO_WEEKS, TWO_WEEKS.slice(2, 1)])
    with pytest.raises(ValueError, match="repeated dates"):
        aggregate(doubled, "1wk", None)


def test_nulls_are_refused() -> None:
    holed = TWO_WEEKS.set_column(
        TWO_WEEKS.schema.get_field_index("volume"),
        BAR_SCHEMA.field("volume"),
        pa.array([1, 2, None, 4, 5, 6, 7, 8, 9], pa.int64()),
    )
    with pytest.raises(ValueError, match="nulls"):
        aggregate(holed, "1wk", None)


def test_mixed_symbols_are_refused() -> None:
    other = bars_from_pylist("MSFT", [bar("2024-01-22", 1.0, 1.0, 1.0, 1.0, 1)])
    with pytest.raises(ValueError, match="mixed symbols"):
        aggregate(pa.concat_tables([TWO_WEEKS, other]), "1wk", None)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------


def week_start(d: date) -> date:
    return d - timedelta(days=d.weekday())


def month_start(d: date) -> date:
    return d.replace(day=1)


def period_end(label: date, interval: str) -> date:
    if interval == "1wk":
        return label + timedelta(days=6)
    next_month = (label.replace(day=28) + timedelta(days=4)).replace(day=1)
    return next_month - timedelta(days=1)


LABEL = {"1wk": week_start, "1mo": month_start}


def reference(daily: list[dict], interval: str, complete_through: date | None) -> list[dict]:
    """The obvious loop: group consecutive sorted rows by their label."""
    out: list[dict] = []
    for r in sorted(daily, key=lambda r: r["date"]):
        label = LABEL[interval](r["date"])
        if out and out[-1]["date"] == label:
            p = out[-1]
            p["high"] = max(p["high"], r["high"])
            p["low"] = min(p["low"], r["low"])
            p["close"], p["adj_close"] = r["close"], r["adj_close"]
            p["volume"] += r["volume"]
            p["sessions"] += 1
        else:
            out.append({**r, "date": label, "sessions": 1})
    for p in out:
        end = period_end(p["date"], interval)
        p["provisional"] = complete_through is not None and end > complete_through
    return out


price = st.floats(min_value=0.01, max_value=1e5, allow_nan=False, allow_infinity=False)


@st.composite
def daily_bars(draw: st.DrawFn, max_rows: int = 80) -> list[dict]:
    """Sorted unique dates (gaps of 1-10 days, weekends included), plausible OHLC."""
    day = draw(st.dates(min_value=D("1950-01-01"), max_value=D("2090-01-01")))
    gaps = draw(st.lists(st.integers(1, 10), max_size=max_rows - 1))
    out = []
    for i in range(len(gaps) + 1):
        o, c = draw(price), draw(price)
        out.append(
            {
                "symbol": "SYM",
                "date": day,
                "open": o,
                "high": max(o, c) + draw(st.floats(0, 100)),
                "low": min(o, c) * draw(st.floats(0.5, 1)),
                "close": c,
                "adj_close": c * draw(st.floats(0.5, 1)),
                "volume": draw(st.integers(0, 10**12)),
            }
        )
        if i < len(gaps):
            day += timedelta(days=gaps[i])
    return out


def to_table(daily: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(daily, schema=BAR_SCHEMA)


intervals = st.sampled_from(["1wk", "1mo"])
maybe_through = st.none() | st.dates(min_value=D("1949-01-01"), max_value=D("2091-01-01"))
props = settings(max_examples=150, deadline=None)


@props
@given(daily=daily_bars(), interval=intervals, through=maybe_through)
def test_matches_the_naive_reference(
    daily: list[dict], interval: str, through: date | None
) -> None:
    assert rows(aggregate(to_table(daily), interval, through)) == reference(
        daily, interval, through
    )


@props
@given(daily=daily_bars(), interval=intervals)
def test_volume_is_conserved(daily: list[dict], interval: str) -> None:
    got = aggregate(to_table(daily), interval, None)
    assert sum(got.column("volume").to_pylist()) == sum(r["volume"] for r in daily)


@props
@given(daily=daily_bars(), interval=intervals)
def test_sessions_sum_to_the_row_count(daily: list[dict], interval: str) -> None:
    got = aggregate(to_table(daily), interval, None)
    assert sum(got.column("sessions").to_pylist()) == len(daily)


@props
@given(daily=daily_bars(), interval=intervals)
def test_labels_cover_their_days_and_extremes_bound_them(daily: list[dict], interval: str) -> None:
    periods = rows(aggregate(to_table(daily), interval, None))
    labels = [p["date"] for p in periods]
    assert labels == sorted(set(labels))
    for lb in labels:
        if interval == "1wk":
            assert lb.weekday() == 0
        else:
            assert lb.day == 1
    by_label = {p["date"]: p for p in periods}
    # Every day falls in exactly one period: the last label not after it, ending on/after it.
    for r in daily:
        label = max(lb for lb in labels if lb <= r["date"])
        assert r["date"] <= period_end(label, interval)
        p = by_label[label]
        assert p["high"] >= r["high"]
        assert p["low"] <= r["low"]
    for p in periods:
        covered = [r for r in daily if p["date"] <= r["date"] <= period_end(p["date"], interval)]
        assert len(covered) == p["sessions"]
        assert p["high"] == max(r["high"] for r in covered)
        assert p["low"] == min(r["low"] for r in covered)


@props
@given(daily=daily_bars(), interval=intervals, through=maybe_through, data=st.data())
def test_concatenation_of_whole_periods_commutes(
    daily: list[dict], interval: str, through: date | None, data: st.DataObject
) -> None:
    """Splitting the history at a period boundary and aggregating each part gives the same rows
    as aggregating the whole: the property an incremental weekly build would rely on."""
    boundary = LABEL[interval](data.draw(st.sampled_from([r["date"] for r in daily])))
    before = to_table([r for r in daily if r["date"] < boundary])
    after = to_table([r for r in daily if r["date"] >= boundary])
    whole = aggregate(to_table(daily), interval, through)
    parts = pa.concat_tables(
        [aggregate(before, interval, through), aggregate(after, interval, through)]
    )
    assert parts.combine_chunks().equals(whole)


@props
@given(daily=daily_bars(), interval=intervals, seed=st.integers(0, 2**32 - 1))
def test_row_order_does_not_matter(daily: list[dict], interval: str, seed: int) -> None:
    shuffled = daily.copy()
    random.Random(seed).shuffle(shuffled)
    assert aggregate(to_table(shuffled), interval, None).equals(
        aggregate(to_table(daily), interval, None)
    )


@props
@given(daily=daily_bars(), interval=intervals, through=maybe_through)
def test_provisional_periods_are_a_suffix(
    daily: list[dict], interval: str, through: date | None
) -> None:
    flags = aggregate(to_table(daily), interval, through).column("provisional").to_pylist()
    assert flags == sorted(flags)  # False... then True...
