"""Exchange calendars: symbol mapping, sessions, closes, offsets and gaps.

Expected values come from exchange rules and the fixtures' dates, not from running the code:
NYSE holidays and early closes are published; the S&P 500 series (arch's bundled sample,
1999-01-04 → 2018-12-31) is a real NYSE daily record, so it must match XNYS session for session.
"""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import exchange_calendars as xc
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from barlake.core.calendar import (
    ALWAYS,
    INDEX_EXCHANGES,
    SUFFIX_EXCHANGES,
    WEEKDAYS,
    calendar_for,
    exchange_for,
    exchange_match,
    get_calendar,
)

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
TCS_DAILY = FIXTURES / "daily_weekly_pairs" / "TCS.NS" / "TCS.NS_daily_data.csv"


def d32(*days: date) -> pa.Array:
    return pa.array(list(days), pa.date32())


# --------------------------------------------------------------------------- symbol mapping


@pytest.mark.parametrize(
    ("symbol", "code", "known"),
    [
        # no suffix: US listings, share classes and US indices
        ("AAPL", "XNYS", True),
        ("BRK-B", "XNYS", True),
        ("BF-B", "XNYS", True),
        ("^GSPC", "XNYS", True),
        ("^VIX", "XNYS", True),
        # suffixes named in the brief
        ("VOD.L", "XLON", True),
        ("SAP.DE", "XETR", True),
        ("SAP.F", "XFRA", True),
        ("MC.PA", "XPAR", True),
        ("ASML.AS", "XAMS", True),
        ("SAN.MC", "XMAD", True),
        ("ENI.MI", "XMIL", True),
        ("NESN.SW", "XSWX", True),
        ("7203.T", "XTKS", True),
        ("0700.HK", "XHKG", True),
        ("TCS.NS", "XBOM", True),
        ("500325.BO", "XBOM", True),
        ("BHP.AX", "XASX", True),
        ("RY.TO", "XTSE", True),
        ("600519.SS", "XSHG", True),
        ("005930.KS", "XKRX", True),
        ("2330.TW", "XTAI", True),
        ("VOLV-B.ST", "XSTO", True),
        ("NOVO-B.CO", "XCSE", True),
        ("EQNR.OL", "XOSL", True),
        ("NOKIA.HE", "XHEL", True),
        ("PETR4.SA", "BVMF", True),
        ("WALMEX.MX", "XMEX", True),
        ("NPN.JO", "XJSE", True),
        ("D05.SI", "XSES", True),
        ("FPH.NZ", "XNZE", True),
        ("OMV.VI", "XWBO", True),
        ("ABI.BR", "XBRU", True),
        ("EDP.LS", "XLIS", True),
        ("PKN.WA", "XWAR", True),
        ("THYAO.IS", "XIST", True),
        # a few more Yahoo suffixes and listed non-US indices
        ("000001.SZ", "XSHG", True),
        ("035720.KQ", "XKRX", True),
        ("BBD-B.TO", "XTSE", True),
        ("^FTSE", "XLON", True),
        ("^N225", "XTKS", True),
        ("^NSEI", "XBOM", True),
        # crypto, FX, futures
        ("BTC-USD", ALWAYS, True),
        ("ETH-USD", ALWAYS, True),
        ("ETH-EUR", ALWAYS, True),
        ("DOGE-USDT", ALWAYS, True),
        ("EURUSD=X", WEEKDAYS, True),
        ("JPY=X", WEEKDAYS, True),
        ("ES=F", "CMES", True),
        ("GC=F", "CMES", True),
        # case and whitespace do not matter
        (" vod.l ", "XLON", True),
        # visible fallbacks: unknown suffix, unlisted index, suffixes whose calendar does not
        # build with pandas 3 (XTAE, ASEX)
        ("FOO.ZZ", "XNYS", False),
        ("^SOMEINDEX", "XNYS", False),
        ("TEVA.TA", "XNYS", False),
        ("OPAP.AT", "XNYS", False),
    ],
)
def test_exchange_mapping(symbol: str, code: str, known: bool) -> None:
    match = exchange_match(symbol)
    assert (match.code, match.known) == (code, known)
    assert exchange_for(symbol) == code


def test_every_mapped_code_exists_and_builds_with_fixed_bounds() -> None:
    names = set(xc.get_calendar_names(include_aliases=False))
    codes = set(SUFFIX_EXCHANGES.values()) | set(INDEX_EXCHANGES.values()) | {"CMES"}
    assert codes <= names
    for code in sorted(codes):
        cal = get_calendar(code)
        assert cal.code == code
        assert date(1970, 1, 1) <= cal.first <= cal.last <= date(2035, 12, 31)
        # a plain mid-week day well inside every authoritative range resolves to a session
        assert cal.session_count(max(cal.first, date(2022, 1, 1)), cal.last) > 0


def test_calendars_are_cached_per_code() -> None:
    assert calendar_for("AAPL") is calendar_for("^GSPC") is get_calendar("XNYS")
    assert calendar_for("TCS.NS") is calendar_for("RELIANCE.BO")


def test_published_lists_end_early() -> None:
    # XBOM's holidays are a published list ending 2026-12-31 (bound_max in exchange_calendars):
    # after that only the weekday fallback applies, and gaps are not judged.
    cal = get_calendar("XBOM")
    assert (cal.first, cal.last) == (date(1997, 1, 1), date(2026, 12, 31))
    assert cal.is_session(d32(date(2027, 1, 4), date(2027, 1, 9))).to_pylist() == [True, False]
    assert cal.gaps(d32(date(2026, 12, 30), date(2027, 1, 8))).to_pylist() == [date(2026, 12, 31)]


# --------------------------------------------------------------------------- NYSE

NYSE_HOLIDAYS_2024 = [
    date(2024, 1, 1),  # New Year's Day
    date(2024, 1, 15),  # Martin Luther King Jr. Day
    date(2024, 2, 19),  # Washington's Birthday
    date(2024, 3, 29),  # Good Friday
    date(2024, 5, 27),  # Memorial Day
    date(2024, 6, 19),  # Juneteenth
    date(2024, 7, 4),  # Independence Day
    date(2024, 9, 2),  # Labor Day
    date(2024, 11, 28),  # Thanksgiving
    date(2024, 12, 25),  # Christmas
]


def test_nyse_holidays_and_half_days() -> None:
    cal = get_calendar("XNYS")
    days = [date(2024, 7, 4), date(2024, 3, 29), date(2024, 11, 28), date(2024, 11, 29)]
    # Independence Day, Good Friday, Thanksgiving: closed. Day after Thanksgiving: half day.
    assert cal.is_session(d32(*days)).to_pylist() == [False, False, False, True]
    assert cal.session_count(date(2024, 1, 1), date(2024, 12, 31)) == 252


def test_nyse_closes_in_utc() -> None:
    cal = get_calendar("XNYS")
    # 13:00 New York on the early-close days; 16:00 otherwise (EST = UTC-5, EDT = UTC-4).
    assert cal.session_close_utc(date(2024, 11, 29)) == datetime(2024, 11, 29, 18, tzinfo=UTC)
    assert cal.session_close_utc(date(2024, 7, 3)) == datetime(2024, 7, 3, 17, tzinfo=UTC)
    assert cal.session_close_utc(date(2024, 11, 27)) == datetime(2024, 11, 27, 21, tzinfo=UTC)
    assert cal.session_close_utc(date(2024, 7, 5)) == datetime(2024, 7, 5, 20, tzinfo=UTC)
    with pytest.raises(ValueError):
        cal.session_close_utc(date(2024, 7, 4))


def test_holidays_and_half_days_are_never_gaps() -> None:
    cal = get_calendar("XNYS")
    # Every weekday of 2024 except the ten NYSE holidays: no gap (half days are sessions).
    every_day = [date(2024, 1, 1) + timedelta(days=i) for i in range(366)]
    sessions = [d for d in every_day if d.weekday() < 5 and d not in NYSE_HOLIDAYS_2024]
    assert len(sessions) == 252
    assert cal.is_session(d32(*sessions)).false_count == 0
    assert cal.is_session(d32(*NYSE_HOLIDAYS_2024)).true_count == 0
    assert cal.gaps(d32(*sessions), date(2024, 1, 1), date(2024, 12, 31)).to_pylist() == []
    without_half_day = [d for d in sessions if d != date(2024, 11, 29)]
    assert cal.gaps(d32(*without_half_day)).to_pylist() == [date(2024, 11, 29)]
    # the bars around July 4th: 3rd (half day) and 5th present, the 4th is a holiday
    assert cal.gaps(d32(date(2024, 7, 3), date(2024, 7, 5))).to_pylist() == []


def test_sessions_is_a_sorted_date32_range() -> None:
    cal = get_calendar("XNYS")
    week = cal.sessions(date(2024, 7, 1), date(2024, 7, 7))
    assert week.type == pa.date32()
    assert week.to_pylist() == [date(2024, 7, d) for d in (1, 2, 3, 5)]
    assert len(cal.sessions(date(2024, 7, 7), date(2024, 7, 1))) == 0


# --------------------------------------------------------------------------- 24/7 and FX


def test_crypto_trades_every_day() -> None:
    cal = calendar_for("BTC-USD")
    january = cal.sessions(date(2024, 1, 1), date(2024, 1, 31))
    assert len(january) == 31
    # Saturday, Sunday and Christmas are sessions
    weekend_and_christmas = d32(date(2024, 1, 6), date(2024, 1, 7), date(2024, 12, 25))
    assert cal.is_session(weekend_and_christmas).to_pylist() == [True, True, True]
    holes = [d for d in january.to_pylist() if d not in (date(2024, 1, 6), date(2024, 1, 14))]
    assert cal.gaps(d32(*holes)).to_pylist() == [date(2024, 1, 6), date(2024, 1, 14)]
    assert cal.session_close_utc(date(2024, 1, 6)) == datetime(2024, 1, 7, tzinfo=UTC)
    assert cal.session_offset(date(2024, 1, 6), -5) == date(2024, 1, 1)


def test_fx_trades_every_weekday() -> None:
    cal = calendar_for("EURUSD=X")
    # Christmas Day 2024 (Wednesday) is a weekday, hence a session; Saturday is not.
    assert cal.is_session(d32(date(2024, 12, 25), date(2024, 12, 28))).to_pylist() == [True, False]
    assert len(cal.sessions(date(2024, 1, 1), date(2024, 12, 31))) == 262
    assert cal.next_session(date(2024, 12, 27)) == date(2024, 12, 30)
    assert cal.session_close_utc(date(2024, 12, 27)) == datetime(2024, 12, 28, tzinfo=UTC)


# --------------------------------------------------------------------------- offsets


@settings(max_examples=200, deadline=None)
@given(
    day=st.dates(min_value=date(1975, 1, 1), max_value=date(2030, 12, 31)),
    n=st.integers(min_value=-400, max_value=400),
    code=st.sampled_from(["XNYS", "XLON", "XBOM", ALWAYS, WEEKDAYS]),
)
def test_session_offset_round_trips(day: date, n: int, code: str) -> None:
    cal = get_calendar(code)
    session = day if cal.is_session(d32(day))[0].as_py() else cal.next_session(day)
    moved = cal.session_offset(session, n)
    assert cal.session_offset(moved, -n) == session
    lo, hi = sorted((session, moved))
    assert cal.session_count(lo, hi) == abs(n) + 1


@settings(max_examples=100, deadline=None)
@given(day=st.dates(min_value=date(1975, 1, 1), max_value=date(2030, 12, 31)))
def test_offsets_from_any_day(day: date) -> None:
    cal = get_calendar("XNYS")
    assert cal.session_offset(day, -1) == cal.previous_session(day) < day
    assert cal.session_offset(day, 1) == cal.next_session(day) > day
    if not cal.is_session(d32(day))[0].as_py():
        with pytest.raises(ValueError):
            cal.session_offset(day, 0)
        assert cal.session_count(cal.previous_session(day), cal.next_session(day)) == 2


def test_offset_over_a_holiday_weekend() -> None:
    cal = get_calendar("XNYS")
    # 5 sessions before Monday 2024-07-08: 07-05, 07-03, 07-02, 07-01, 06-28 (07-04 closed)
    assert cal.session_offset(date(2024, 7, 8), -5) == date(2024, 6, 28)
    # from an unscheduled day (a Saturday): the previous session is the first step back
    assert cal.session_offset(date(2024, 7, 6), -1) == date(2024, 7, 5)


# --------------------------------------------------------------------------- inputs


def test_is_session_accepts_chunked_and_keeps_nulls() -> None:
    cal = get_calendar("XNYS")
    chunked = pa.chunked_array(
        [d32(date(2024, 7, 3)), pa.array([date(2024, 7, 4), None], pa.date32())]
    )
    assert cal.is_session(chunked).to_pylist() == [True, False, None]
    assert cal.gaps(chunked).to_pylist() == []
    with pytest.raises(TypeError):
        cal.is_session(pa.array([datetime(2024, 7, 3, tzinfo=UTC)], pa.timestamp("s", "UTC")))


def test_before_1970_is_the_weekday_fallback() -> None:
    cal = get_calendar("XNYS")
    # 1965-01-01 (Friday, New Year's Day) is outside the authoritative range: weekday fallback
    assert cal.is_session(d32(date(1965, 1, 1), date(1965, 1, 2))).to_pylist() == [True, False]
    # gaps are judged from 1970-01-01 only (1970-01-01 itself was New Year's Day)
    assert cal.gaps(d32(date(1969, 12, 1), date(1970, 1, 5))).to_pylist() == [date(1970, 1, 2)]


def test_empty_inputs() -> None:
    cal = get_calendar("XNYS")
    empty = pa.array([], pa.date32())
    assert cal.is_session(empty).to_pylist() == []
    assert cal.gaps(empty).to_pylist() == []
    assert cal.gaps(empty, date(2024, 7, 1), date(2024, 7, 5)).to_pylist() == [
        date(2024, 7, 1),
        date(2024, 7, 2),
        date(2024, 7, 3),
        date(2024, 7, 5),
    ]


# --------------------------------------------------------------------------- real series


@pytest.fixture(scope="module")
def sp500_dates() -> pa.Array:
    from arch.data import sp500

    frame = sp500.load()
    return pa.array(list(frame.index.date), pa.date32())


def test_sp500_twenty_years_has_no_false_gap(sp500_dates: pa.Array) -> None:
    cal = get_calendar("XNYS")
    assert len(sp500_dates) == 5031
    assert cal.is_session(sp500_dates).false_count == 0
    assert cal.gaps(sp500_dates).to_pylist() == []
    first, last = sp500_dates[0].as_py(), sp500_dates[-1].as_py()
    assert (first, last) == (date(1999, 1, 4), date(2018, 12, 31))
    assert cal.session_count(first, last) == len(sp500_dates)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_sp500_deleted_sessions_are_exactly_the_gaps(sp500_dates: pa.Array, seed: int) -> None:
    cal = get_calendar("XNYS")
    rng = np.random.default_rng(seed)
    n = len(sp500_dates)
    drop = np.sort(rng.choice(n, size=int(rng.integers(1, 300)), replace=False))
    keep = np.ones(n, dtype=bool)
    keep[drop] = False
    kept = sp500_dates.filter(pa.array(keep))
    expected = sp500_dates.take(pa.array(drop)).to_pylist()
    # with the range given explicitly, the first and last days can be missing too
    found = cal.gaps(kept, date(1999, 1, 4), date(2018, 12, 31)).to_pylist()
    assert found == expected
    # without it, the range is [min, max] of what is left
    inner = [d for d in expected if kept[0].as_py() < d < kept[-1].as_py()]
    assert cal.gaps(kept).to_pylist() == inner


@settings(max_examples=25, deadline=None)
@given(st.sets(st.integers(min_value=0, max_value=5030), max_size=60))
def test_sp500_deleted_sessions_property(sp500_dates: pa.Array, drop: set[int]) -> None:
    cal = get_calendar("XNYS")
    keep = np.ones(len(sp500_dates), dtype=bool)
    keep[list(drop)] = False
    found = cal.gaps(sp500_dates.filter(pa.array(keep)), date(1999, 1, 4), date(2018, 12, 31))
    assert found.to_pylist() == [sp500_dates[i].as_py() for i in sorted(drop)]


# --------------------------------------------------------------------------- NSE (TCS.NS)


def _tcs_rows() -> list[tuple[date, int]]:
    with TCS_DAILY.open() as f:
        rows = list(csv.reader(f))
    header = rows[0]
    assert rows[1][0] == ""  # yfinance's second header row (ticker level)
    vol = header.index("Volume")
    return [(date.fromisoformat(r[0]), int(r[vol])) for r in rows[2:]]


def test_tcs_ns_against_xbom() -> None:
    """What XBOM (BSE: exchange_calendars has no NSE calendar) says about a year of TCS.NS.

    - Every XBOM session from 2024-12-23 to 2025-12-22 has a row: no gap.
    - Two rows are exceptional sessions exchange_calendars lacks, which our calendar adds
      (`EXCEPTIONAL_SESSIONS`):
      * 2025-02-01, a Saturday: the special Union Budget session (437,172 shares).
      * 2025-10-21, a Tuesday: Diwali (Laxmi Pujan), an exchange holiday with the one-hour
        Muhurat trading session (310,644 shares).
    - One row falls on a day XBOM says is closed:
      * 2025-11-05, a Wednesday: Guru Nanak Jayanti, a holiday. Volume 0 and O=H=L=C = the
        previous close: Yahoo's holiday placeholder, which validation quarantines.
    - 2025-03-18 (Tuesday) IS an XBOM session; its row has volume 0 and O=H=L=C = the 03-17
      close, i.e. Yahoo filled a real session with a flat row. It is kept (a zero-volume session)
      and is not a gap; a single zero-volume day is below the profile's run threshold.
    """
    rows = _tcs_rows()
    assert len(rows) == 250
    cal = calendar_for("TCS.NS")
    assert cal.code == "XBOM"
    dates = d32(*(d for d, _ in rows))
    assert cal.gaps(dates).to_pylist() == []
    flags = cal.is_session(dates).to_pylist()
    off_calendar = [(d, v) for (d, v), ok in zip(rows, flags, strict=True) if not ok]
    assert off_calendar == [(date(2025, 11, 5), 0)]
    assert date(2025, 2, 1).weekday() == 5
    assert cal.is_session(d32(date(2025, 3, 18))).to_pylist() == [True]
    assert dict(rows)[date(2025, 3, 18)] == 0
    with pytest.raises(ValueError):  # no close is known for a closed day
        cal.session_close_utc(date(2025, 11, 5))
    # The exceptional sessions close at their own time: 15:30 and 19:15 Kolkata.
    assert cal.session_close_utc(date(2025, 2, 1)) == datetime(2025, 2, 1, 10, tzinfo=UTC)
    assert cal.session_close_utc(date(2025, 10, 21)) == datetime(2025, 10, 21, 13, 45, tzinfo=UTC)
    # 15:30 Kolkata = 10:00 UTC
    assert cal.session_close_utc(date(2025, 1, 31)) == datetime(2025, 1, 31, 10, tzinfo=UTC)
