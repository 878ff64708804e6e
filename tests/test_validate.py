"""Validation rules, one by one, plus Yahoo's real quirks (placeholders, intraday bars)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from barlake.adapters.yahoo_chart import load_chart
from barlake.core.calendar import calendar_for
from barlake.core.validate import validate
from conftest import FIXTURES, bars

NYSE = calendar_for("AAPL")
TODAY = date(2026, 11, 21)
GOOD = (date(2024, 3, 4), 10.0, 11.0, 9.0, 10.5, 10.4, 100)


def reasons(rows: list[tuple], symbol: str = "T", today: date = TODAY) -> list[str]:
    v = validate(bars(symbol, rows), calendar=calendar_for(symbol), today=today)
    return v.quarantined.column("reason").to_pylist()


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ((date(2024, 3, 4), None, 11.0, 9.0, 10.5, 10.4, 100), "missing_value"),
        ((date(2024, 3, 4), 10.0, 11.0, 9.0, 10.5, 10.4, None), "missing_value"),
        ((date(2024, 3, 4), math.nan, 11.0, 9.0, 10.5, 10.4, 100), "not_finite"),
        ((date(2024, 3, 4), 10.0, math.inf, 9.0, 10.5, 10.4, 100), "not_finite"),
        ((date(2024, 3, 4), 0.0, 11.0, 0.0, 10.5, 10.4, 100), "non_positive_price"),
        ((date(2024, 3, 4), 10.0, 11.0, 9.0, 10.5, -1.0, 100), "non_positive_price"),
        ((date(2024, 3, 4), 10.0, 11.0, 9.0, 10.5, 10.4, -1), "negative_volume"),
        ((date(2024, 3, 4), 10.0, 10.2, 9.0, 10.5, 10.4, 100), "high_below_open_close"),
        ((date(2024, 3, 4), 10.0, 11.0, 10.2, 10.5, 10.4, 100), "low_above_open_close"),
        (
            (date(2024, 3, 4), 10.0, 9.0, 11.0, 10.5, 10.4, 100),
            "high_below_open_close",
        ),  # high < low
        ((date(2026, 11, 23), 10.0, 11.0, 9.0, 10.5, 10.4, 100), "future_date"),
        ((date(2024, 7, 4), 10.0, 10.0, 10.0, 10.0, 10.0, 0), "holiday_placeholder"),
        ((date(2024, 7, 4), 10.0, 11.0, 9.0, 10.5, 10.4, 0), "not_a_session"),
    ],
)
def test_each_rule(row: tuple, reason: str) -> None:
    assert reasons([GOOD, row] if row[0] != GOOD[0] else [row]) == [reason]


def test_duplicate_dates_refuse_every_copy() -> None:
    assert reasons([GOOD, GOOD, (date(2024, 3, 5), 10.0, 11.0, 9.0, 10.5, 10.4, 100)]) == [
        "duplicate_date",
        "duplicate_date",
    ]


def test_float32_noise_in_ohlc_is_tolerated() -> None:
    # Adjusted float32 values can put the close an ulp above the high.
    close = 68.36849975585938
    high = float(pa.scalar(close * (1 - 3e-8), pa.float32()).as_py())
    assert reasons([(date(2024, 3, 4), 67.0, high, 66.0, close, close, 100)]) == []


def test_traded_non_session_day_is_kept_as_unscheduled_session() -> None:
    # A Saturday with volume: the exchange held a special session the calendar lacks.
    v = validate(
        bars("TCS.NS", [(date(2025, 2, 1), 10.0, 11.0, 9.0, 10.5, 10.5, 5000)]),
        calendar=calendar_for("TCS.NS"),
        today=TODAY,
    )
    assert v.good.num_rows == 1 and v.quarantined.num_rows == 0


def test_flat_zero_volume_sessions_of_a_suspended_stock_are_kept() -> None:
    """AET.L (real, suspended): O=H=L=C and zero volume on real LSE sessions are facts."""
    import pandas as pd

    df = pd.read_csv(FIXTURES / "yfinance_tests_data" / "AET-L-1d-100x-error.csv", index_col=0)
    rows = [
        (date.fromisoformat(i[:10]), r.Open, r.High, r.Low, r.Close, r["Adj Close"], int(r.Volume))
        for i, r in df.iterrows()
    ]
    v = validate(bars("AET.L", rows), calendar=calendar_for("AET.L"), today=TODAY)
    assert v.quarantined.num_rows == 0 and v.good.num_rows == len(rows) == 23
    assert v.good.column("date").to_pylist() == sorted(r[0] for r in rows)  # newest-first input


def test_in_progress_bar_is_provisional_not_quarantined() -> None:
    rec = load_chart(
        FIXTURES
        / "restatements"
        / "MSFT_dividend_2025-08-21"
        / "recorded-2025-08-15T17-35Z_intraday"
        / "history_chart_MSFT.json"
    )
    assert rec.as_of == datetime(2025, 8, 15, 17, 35, 51, tzinfo=UTC)
    v = validate(rec.bars, calendar=NYSE, today=TODAY, as_of=rec.as_of)
    assert v.provisional.column("date").to_pylist() == [date(2025, 8, 15)]
    assert v.provisional.column("volume").to_pylist() == [9_656_017]
    assert v.quarantined.num_rows == 0 and v.good.num_rows == 124
    # One second after the 20:00Z close the same bar is final.
    late = validate(
        rec.bars, calendar=NYSE, today=TODAY, as_of=datetime(2025, 8, 15, 20, 0, 1, tzinfo=UTC)
    )
    assert late.provisional.num_rows == 0 and late.good.num_rows == 125


def test_half_day_closes_early() -> None:
    day = date(2024, 11, 29)  # NYSE closes 13:00 New York = 18:00Z
    row = [(day, 10.0, 11.0, 9.0, 10.5, 10.4, 100)]
    early = validate(
        bars("T", row),
        calendar=NYSE,
        today=TODAY,
        as_of=datetime(2024, 11, 29, 18, 0, 1, tzinfo=UTC),
    )
    assert early.good.num_rows == 1
    before = validate(
        bars("T", row),
        calendar=NYSE,
        today=TODAY,
        as_of=datetime(2024, 11, 29, 17, 59, 59, tzinfo=UTC),
    )
    assert before.provisional.num_rows == 1
    # A regular day at the same instant is still trading (closes 21:00Z in winter).
    normal = [(date(2024, 12, 2), 10.0, 11.0, 9.0, 10.5, 10.4, 100)]
    assert (
        validate(
            bars("T", normal),
            calendar=NYSE,
            today=TODAY,
            as_of=datetime(2024, 12, 2, 18, 0, 1, tzinfo=UTC),
        ).provisional.num_rows
        == 1
    )


@given(
    st.lists(
        st.tuples(
            st.integers(0, 400), st.floats(0.01, 1e4), st.floats(0.0, 0.5), st.integers(0, 10**9)
        ),
        max_size=40,
    )
)
def test_every_row_is_either_kept_or_quarantined(rows: list[tuple]) -> None:
    table = bars(
        "T",
        [
            (
                date.fromordinal(date(2023, 1, 2).toordinal() + d),
                p,
                p * (1 + w),
                p * (1 - w / 2),
                p,
                p,
                v,
            )
            for d, p, w, v in rows
        ],
    )
    v = validate(table, calendar=NYSE, today=TODAY)
    assert v.good.num_rows + v.quarantined.num_rows + v.provisional.num_rows == table.num_rows
    kept = v.good.column("date").to_pylist()
    assert kept == sorted(set(kept))


def test_real_nse_year_placeholder_quarantined_special_sessions_kept() -> None:
    """TCS.NS 2024-12-23 → 2025-12-22 as Yahoo served it (yf.download, auto_adjust=False)."""
    import pandas as pd

    df = pd.read_csv(
        FIXTURES / "daily_weekly_pairs" / "TCS.NS" / "TCS.NS_daily_data.csv",
        header=[0, 1],
        index_col=0,
        parse_dates=True,
    )
    df.columns = df.columns.get_level_values(0)
    rows = [
        (i.date(), r.Open, r.High, r.Low, r.Close, r["Adj Close"], int(r.Volume))
        for i, r in df.iterrows()
    ]
    v = validate(bars("TCS.NS", rows), calendar=calendar_for("TCS.NS"), today=TODAY)
    # Guru Nanak Jayanti (exchange closed): Yahoo's flat, zero-volume filler row.
    assert [(r["date"], r["reason"]) for r in v.quarantined.to_pylist()] == [
        (date(2025, 11, 5), "holiday_placeholder")
    ]
    kept = set(v.good.column("date").to_pylist())
    # Budget-day Saturday and the Diwali Muhurat session traded: kept although XBOM lists
    # them as closed. 2025-03-18 is a real session with a zero-volume copy: kept as Yahoo said.
    assert {date(2025, 2, 1), date(2025, 10, 21), date(2025, 3, 18)} <= kept
    assert v.good.num_rows == len(rows) - 1 == 249
