"""Weekly and monthly bars aggregated from real Yahoo daily bars, checked against Yahoo's own
1wk/1mo bars from the same download runs (tests/fixtures/yahoo/SOURCES.md, §1 and §5).

Pairs: TCS.NS 1d vs 1wk and 1mo (NSE), AAPL auto-adjusted 1d vs 1wk (NASDAQ), AET.L 1d vs 1wk
(LSE). Each pair prints its match rate per field (`pytest -s` shows them) and asserts it; every
documented difference is then asserted by date, as Yahoo's own rule, and every other period must
match.

Tolerances. Yahoo's prices are float32 values widened to float64 (asserted below), so a value
Yahoo passes through unchanged (raw open/high/low/close, volume) must match EXACTLY. A value
Yahoo or yfinance derives separately for each bar gets REL_TOL = 1e-6 (about 8 float32 ulps,
1 ulp ≤ 1.2e-7 relative):
- adj_close: Yahoo computes close × dividend factor per bar and rounds it to float32, so the
  daily and the weekly adj close of the same session differ by 1-2 ulps (observed ≤ 2.4e-7);
- AAPL auto-adjusted OHLC: yfinance multiplies each bar's float32 price by that bar's
  adj_close/close ratio in float64, so daily and weekly pick up different rounding (observed
  ≤ 5.2e-7, and up to 4 ulps on close).
The smallest real effect in these files (an AAPL dividend, 9e-4) is ~900× above REL_TOL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from barlake.core.aggregate import aggregate
from barlake.core.schema import BAR_SCHEMA

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"
PAIRS = FIXTURES / "daily_weekly_pairs"
YF_TESTS = FIXTURES / "yfinance_tests_data"

D = date.fromisoformat
REL_TOL = 1e-6
FIELDS = ("open", "high", "low", "close", "adj_close", "volume")
RENAME = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _tidy(df: pd.DataFrame, dates: list[date]) -> pd.DataFrame:
    """Lower-case BAR_SCHEMA value columns, indexed by calendar date, oldest first."""
    out = df.rename(columns=RENAME)[list(FIELDS)].copy()
    out.index = pd.Index(dates, name="date")
    out["volume"] = out["volume"].astype("int64")
    return out.sort_index()


def load_tcs(kind: str) -> pd.DataFrame:
    """TCS.NS daily/weekly/monthly: two header rows (yfinance MultiIndex), naive dates."""
    path = PAIRS / "TCS.NS" / f"TCS.NS_{kind}_data.csv"
    df = pd.read_csv(path, header=[0, 1], index_col=0, parse_dates=True)
    df.columns = df.columns.get_level_values(0)
    return _tidy(df, [ts.date() for ts in df.index])


def load_aapl(interval: str) -> pd.DataFrame:
    """AAPL auto_adjust=True: OHLC already dividend-adjusted, no Adj Close, so adj = close."""
    df = pd.read_csv(PAIRS / "AAPL_auto_adjusted" / f"AAPL_{interval}.csv", index_col=0)
    df["Adj Close"] = df["Close"]
    return _tidy(df, [D(s) for s in df.index])


def load_aet(interval: str) -> pd.DataFrame:
    """AET.L: exchange-local midnight with a UTC offset, newest row first."""
    df = pd.read_csv(YF_TESTS / f"AET-L-{interval}-100x-error.csv", index_col=0)
    local = pd.to_datetime(df.index, utc=True).tz_convert("Europe/London")
    return _tidy(df, [ts.date() for ts in local])


def to_bars(df: pd.DataFrame, symbol: str) -> pa.Table:
    return pa.table(
        {
            "symbol": [symbol] * len(df),
            "date": pa.array(list(df.index), pa.date32()),
            **{name: df[name].to_numpy() for name in FIELDS},
        },
        schema=BAR_SCHEMA,
    )


def aggregated(daily: pd.DataFrame, symbol: str, interval: str, through: date) -> pd.DataFrame:
    table = aggregate(to_bars(daily, symbol), interval, through)
    out = table.to_pandas()  # date32 → datetime.date objects
    return out.set_index("date")


# ---------------------------------------------------------------------------------------------
# Comparing
# ---------------------------------------------------------------------------------------------


@dataclass(repr=False)
class Pair:
    """Our periods against Yahoo's, over the periods both have."""

    name: str
    daily: pd.DataFrame
    ours: pd.DataFrame
    yahoo: pd.DataFrame
    tolerant: tuple[str, ...]  # fields compared to REL_TOL; the others must match exactly

    @property
    def common(self) -> list[date]:
        return sorted(set(self.ours.index) & set(self.yahoo.index))

    def __repr__(self) -> str:
        return f"Pair({self.name!r})"

    def exact(self, field: str) -> pd.Series:
        c = self.common
        return pd.Series(
            self.ours.loc[c, field].to_numpy() == self.yahoo.loc[c, field].to_numpy(), c
        )

    def matches(self, field: str) -> pd.Series:
        """Exact, or within REL_TOL for the fields Yahoo derives per bar."""
        if field not in self.tolerant:
            return self.exact(field)
        c = self.common
        ours = self.ours.loc[c, field].to_numpy()
        theirs = self.yahoo.loc[c, field].to_numpy()
        return pd.Series(np.isclose(ours, theirs, rtol=REL_TOL, atol=0.0), c)

    def mismatched(self, field: str) -> set[date]:
        m = self.matches(field)
        return set(m.index[~m.to_numpy()])

    def rates(self) -> dict[str, tuple[int, int]]:
        return {f: (int(self.exact(f).sum()), int(self.matches(f).sum())) for f in FIELDS}

    def report(self) -> str:
        n = len(self.common)
        lines = [
            f"{self.name}: {n} common periods (ours {len(self.ours)}, Yahoo {len(self.yahoo)})",
            f"  {'field':<10} {'exact':>12} {'within tol':>14}  tolerance",
        ]
        for f, (ex, ok) in self.rates().items():
            tol = f"rel {REL_TOL:g}" if f in self.tolerant else "exact"
            lines.append(f"  {f:<10} {ex:>4}/{n} {ex / n:6.1%} {ok:>4}/{n} {ok / n:6.1%}  {tol}")
        return "\n".join(lines)


def close_enough(a: float, b: float, rel: float = REL_TOL) -> bool:
    return abs(a - b) <= rel * abs(b)


def week_of(d: date) -> date:
    return d - timedelta(days=d.weekday())


def month_of(d: date) -> date:
    return d.replace(day=1)


def sessions_in(daily: pd.DataFrame, start: date, end: date) -> pd.DataFrame:
    return daily[(daily.index >= start) & (daily.index <= end)]


# Last stored bar and the day before the exchange's next session (what the caller computes from
# the calendar): TCS Mon 2025-12-22 → Tue 12-23; AAPL Tue 2026-03-24 → Wed 03-25;
# AET.L Mon 2022-06-06 → Tue 06-07.
TCS_THROUGH = D("2025-12-22")
AAPL_THROUGH = D("2026-03-24")
AET_THROUGH = D("2022-06-06")


@pytest.fixture(scope="module")
def tcs_daily() -> pd.DataFrame:
    return load_tcs("daily")


@pytest.fixture(scope="module")
def tcs_weekly(tcs_daily: pd.DataFrame) -> Pair:
    ours = aggregated(tcs_daily, "TCS.NS", "1wk", TCS_THROUGH)
    return Pair("TCS.NS 1wk", tcs_daily, ours, load_tcs("weekly"), ("adj_close",))


@pytest.fixture(scope="module")
def tcs_monthly(tcs_daily: pd.DataFrame) -> Pair:
    ours = aggregated(tcs_daily, "TCS.NS", "1mo", TCS_THROUGH)
    return Pair("TCS.NS 1mo", tcs_daily, ours, load_tcs("monthly"), ("adj_close",))


@pytest.fixture(scope="module")
def aapl_weekly() -> Pair:
    daily = load_aapl("1d")
    ours = aggregated(daily, "AAPL", "1wk", AAPL_THROUGH)
    return Pair("AAPL 1wk (auto-adjusted)", daily, ours, load_aapl("1wk"), FIELDS[:5])


@pytest.fixture(scope="module")
def aet_weekly() -> Pair:
    daily = load_aet("1d")
    return Pair(
        "AET.L 1wk", daily, aggregated(daily, "AET.L", "1wk", AET_THROUGH), load_aet("1wk"), ()
    )


# ---------------------------------------------------------------------------------------------
# Match rates, printed and asserted, and "every other period matches"
# ---------------------------------------------------------------------------------------------

# (exact, within tolerance) out of the common periods, per field.
EXPECTED_RATES: dict[str, tuple[int, dict[str, tuple[int, int]]]] = {
    "tcs_weekly": (
        52,
        {
            "open": (50, 50),  # 2 NSE holiday-Monday weeks
            "high": (51, 51),  # the phantom open also lifts one week's high
            "low": (52, 52),
            "close": (52, 52),
            "adj_close": (37, 48),  # 4 ex-dividend weeks; 11 more differ by 1-2 float32 ulps
            "volume": (52, 52),
        },
    ),
    "tcs_monthly": (
        12,
        {
            "open": (11, 11),  # May: 1 May was an NSE holiday
            "high": (12, 12),
            "low": (12, 12),
            "close": (12, 12),
            "adj_close": (5, 8),  # 4 ex-dividend months; 3 more differ by 1 ulp
            "volume": (12, 12),
        },
    ),
    "aapl_weekly": (
        262,
        {
            "open": (6, 255),  # first partial week + 6 dividend weeks with a Monday ex-date
            "high": (41, 252),
            "low": (29, 252),
            "close": (102, 242),  # 20 ex-dividend weeks
            "adj_close": (102, 242),
            "volume": (260, 260),  # first partial week, in-progress last week
        },
    ),
    "aet_weekly": (5, {f: (5, 5) for f in FIELDS}),
}


@pytest.mark.parametrize("pair_name", list(EXPECTED_RATES))
def test_match_rates(pair_name: str, request: pytest.FixtureRequest) -> None:
    pair: Pair = request.getfixturevalue(pair_name)
    print("\n" + pair.report())
    n, rates = EXPECTED_RATES[pair_name]
    assert len(pair.common) == n
    assert pair.rates() == rates


# Every period in which Yahoo's bar is allowed to differ, in any field; each is asserted by date
# in its own test below. Everywhere else every field must match (exactly, or REL_TOL where
# Yahoo derives the value per bar).
TCS_HOLIDAY_MONDAY_WEEKS = (D("2025-03-31"), D("2025-04-14"))
TCS_EX_DIVIDEND_DATES = (D("2025-01-17"), D("2025-06-04"), D("2025-07-16"), D("2025-10-15"))
# Apple's ex-dividend dates and cash amounts (public record, Apple investor relations): an
# oracle independent of these files, which as auto-adjusted data do not reveal them.
AAPL_DIVIDENDS: dict[date, float] = {
    D("2021-05-07"): 0.22, D("2021-08-06"): 0.22, D("2021-11-05"): 0.22,
    D("2022-02-04"): 0.22, D("2022-05-06"): 0.23, D("2022-08-05"): 0.23, D("2022-11-04"): 0.23,
    D("2023-02-10"): 0.23, D("2023-05-12"): 0.24, D("2023-08-11"): 0.24, D("2023-11-10"): 0.24,
    D("2024-02-09"): 0.24, D("2024-05-10"): 0.25, D("2024-08-12"): 0.25, D("2024-11-08"): 0.25,
    D("2025-02-10"): 0.25, D("2025-05-12"): 0.26, D("2025-08-11"): 0.26, D("2025-11-10"): 0.26,
    D("2026-02-09"): 0.26,
}  # fmt: skip
AAPL_FIRST_WEEK = D("2021-03-22")  # the daily file starts on Wednesday 2021-03-24
AAPL_LAST_WEEK = D("2026-03-23")  # in progress; both files fetched moments apart

EXCEPTIONS: dict[str, set[date]] = {
    "tcs_weekly": {*TCS_HOLIDAY_MONDAY_WEEKS, *map(week_of, TCS_EX_DIVIDEND_DATES)},
    "tcs_monthly": {D("2025-05-01"), *map(month_of, TCS_EX_DIVIDEND_DATES)},
    "aapl_weekly": {AAPL_FIRST_WEEK, AAPL_LAST_WEEK, *map(week_of, AAPL_DIVIDENDS)},
    "aet_weekly": set(),
}


@pytest.mark.parametrize("pair_name", list(EXCEPTIONS))
def test_every_other_period_matches(pair_name: str, request: pytest.FixtureRequest) -> None:
    pair: Pair = request.getfixturevalue(pair_name)
    allowed = EXCEPTIONS[pair_name]
    assert allowed <= set(pair.common)
    for field in FIELDS:
        assert pair.mismatched(field) - allowed == set(), field
    # ...and the list is not stale: each exception really differs somewhere.
    for period in allowed:
        assert any(period in pair.mismatched(f) for f in FIELDS), period


def test_fixture_prices_are_float32_values() -> None:
    """Why raw prices are compared exactly: Yahoo's float32 values arrive unchanged. Only
    yfinance's auto-adjusted AAPL open/high/low are float64 products (hence REL_TOL there)."""

    def is_f32(s: pd.Series) -> bool:
        v = s.to_numpy()
        return bool((v.astype(np.float32).astype(np.float64) == v).all())

    prices = ["open", "high", "low", "close", "adj_close"]
    frames = [load_tcs(k) for k in ("daily", "weekly", "monthly")]
    frames += [load_aet(i) for i in ("1d", "1wk")]
    for df in frames:
        assert all(is_f32(df[p]) for p in prices)
    for interval in ("1d", "1wk"):
        aapl = load_aapl(interval)
        assert is_f32(aapl["close"])
        assert not any(is_f32(aapl[p]) for p in ("open", "high", "low"))


# ---------------------------------------------------------------------------------------------
# TCS.NS (NSE)
# ---------------------------------------------------------------------------------------------


def test_tcs_period_coverage(tcs_weekly: Pair, tcs_monthly: Pair) -> None:
    """Ours has one period more than Yahoo's at each end that Yahoo's download left out."""
    assert sum(tcs_weekly.ours["sessions"]) == len(tcs_weekly.daily) == 250
    # The week of Monday 2025-12-22 (the last daily bar) is absent from Yahoo's weekly file.
    assert set(tcs_weekly.ours.index) - set(tcs_weekly.yahoo.index) == {D("2025-12-22")}
    assert set(tcs_weekly.yahoo.index) <= set(tcs_weekly.ours.index)
    # Yahoo's period="1y" monthly bars start at 2025-01-01; the daily bars on 2024-12-23.
    assert set(tcs_monthly.ours.index) - set(tcs_monthly.yahoo.index) == {D("2024-12-01")}
    assert tcs_monthly.ours.loc[D("2024-12-01"), "sessions"] == 6
    assert set(tcs_monthly.yahoo.index) <= set(tcs_monthly.ours.index)


def test_tcs_only_the_period_still_open_is_provisional(tcs_weekly: Pair, tcs_monthly: Pair) -> None:
    weekly = tcs_weekly.ours["provisional"]
    assert list(weekly.index[weekly]) == [D("2025-12-22")]
    monthly = tcs_monthly.ours["provisional"]
    assert list(monthly.index[monthly]) == [D("2025-12-01")]
    # December is partial in both (16 sessions to the 22nd) and still matches exactly.
    dec = D("2025-12-01")
    assert tcs_monthly.ours.loc[dec, "sessions"] == 16
    for f in FIELDS:
        assert tcs_monthly.ours.loc[dec, f] == tcs_monthly.yahoo.loc[dec, f], f


def test_tcs_holiday_mondays_are_exactly_the_two_documented_weeks(tcs_weekly: Pair) -> None:
    daily_days = set(tcs_weekly.daily.index)
    missing_monday = [w for w in tcs_weekly.common if w not in daily_days]
    assert missing_monday == list(TCS_HOLIDAY_MONDAY_WEEKS)


def assert_phantom_open(pair: Pair, period: date, prev_session: date) -> None:
    """Yahoo's bar behaves as if the holiday were a bar at the previous session's close:
    open = that close, high/low widened to include it. Close and volume are untouched."""
    daily, ours, yahoo = pair.daily, pair.ours.loc[period], pair.yahoo.loc[period]
    assert period not in daily.index  # the period's first day was a holiday
    prev_close = daily.loc[prev_session, "close"]
    first_session = daily.index[daily.index > period][0]
    assert ours["open"] == daily.loc[first_session, "open"]
    assert yahoo["open"] == prev_close
    assert ours["open"] != yahoo["open"]
    assert yahoo["high"] == max(ours["high"], prev_close)
    assert yahoo["low"] == min(ours["low"], prev_close)
    assert ours["close"] == yahoo["close"]
    assert ours["volume"] == yahoo["volume"]
    assert close_enough(ours["adj_close"], yahoo["adj_close"])


@pytest.mark.parametrize(
    ("week", "prev_friday", "prev_close", "high_lifted"),
    [
        (D("2025-03-31"), D("2025-03-28"), 3606.14990234375, True),
        (D("2025-04-14"), D("2025-04-11"), 3231.5, False),
    ],
)
def test_tcs_holiday_monday_week_opens_at_previous_friday_close(
    tcs_weekly: Pair, week: date, prev_friday: date, prev_close: float, high_lifted: bool
) -> None:
    assert tcs_weekly.daily.loc[prev_friday, "close"] == prev_close
    assert tcs_weekly.yahoo.loc[week, "open"] == prev_close
    assert bool(tcs_weekly.yahoo.loc[week, "high"] == prev_close) is high_lifted
    assert_phantom_open(tcs_weekly, week, prev_friday)


def test_tcs_may_opens_at_april_30_close(tcs_monthly: Pair) -> None:
    """1 May 2025 (Thursday) was an NSE holiday: the same phantom bar on the monthly bar."""
    assert tcs_monthly.yahoo.loc[D("2025-05-01"), "open"] == 3453.699951171875
    assert_phantom_open(tcs_monthly, D("2025-05-01"), D("2025-04-30"))


def adj_ratio(daily: pd.DataFrame) -> pd.Series:
    return daily["adj_close"] / daily["close"]


def ex_dividend_dates(daily: pd.DataFrame) -> dict[date, float]:
    """Sessions where the adj_close/close ratio steps (beyond float32 noise, ~1e-7): an
    ex-dividend date, with the step (previous factor → new factor) as ratio."""
    ratio = adj_ratio(daily)
    step = (ratio / ratio.shift(1)).iloc[1:]
    return {d: float(s) for d, s in step.items() if abs(s - 1) > 1e-5}


def test_tcs_ex_dividend_dates_from_the_data(tcs_daily: pd.DataFrame) -> None:
    found = ex_dividend_dates(tcs_daily)
    assert tuple(found) == TCS_EX_DIVIDEND_DATES
    # The factor steps SOURCES.md reports as the weekly adj-close ratios.
    assert [round(s, 4) for s in found.values()] == [1.0184, 1.0089, 1.0034, 1.0037]


@pytest.mark.parametrize(
    ("pair_name", "label"), [("tcs_weekly", week_of), ("tcs_monthly", month_of)]
)
def test_tcs_adj_close_differs_exactly_in_periods_with_an_ex_date(
    pair_name: str, label: Callable[[date], date], request: pytest.FixtureRequest
) -> None:
    """Yahoo applies the factor in force before the ex-date to the whole period's adj close;
    we keep the last session's adj close as stored. Raw close is the same on both sides."""
    pair: Pair = request.getfixturevalue(pair_name)
    ex_dates = ex_dividend_dates(pair.daily)
    periods = {label(d): (d, step) for d, step in ex_dates.items()}
    assert pair.mismatched("adj_close") == set(periods)
    ratio = adj_ratio(pair.daily)
    for period, (ex_date, step) in periods.items():
        ours, yahoo = pair.ours.loc[period], pair.yahoo.loc[period]
        assert ours["close"] == yahoo["close"]
        last_session = [d for d in pair.daily.index if label(d) == period][-1]
        assert ours["adj_close"] == pair.daily.loc[last_session, "adj_close"]
        before_ex = pair.daily.index[pair.daily.index < ex_date][-1]
        assert close_enough(yahoo["adj_close"], yahoo["close"] * ratio[before_ex])
        assert close_enough(ours["adj_close"] / yahoo["adj_close"], step, rel=2e-6)


def test_tcs_saturday_budget_session_and_placeholders_aggregate_like_yahoo(
    tcs_weekly: Pair, tcs_monthly: Pair
) -> None:
    """Saturday 2025-02-01 (Budget day) is a real session: it joins the week of 01-27 and
    opens February. The zero-volume placeholders (2025-03-18, 2025-11-05, O=H=L=C = previous
    close) are counted as sessions by us and change nothing Yahoo would show."""
    daily = tcs_weekly.daily
    assert D("2025-02-01") in daily.index
    week = D("2025-01-27")
    assert tcs_weekly.ours.loc[week, "sessions"] == 6
    for f in FIELDS:
        assert tcs_weekly.ours.loc[week, f] == tcs_weekly.yahoo.loc[week, f], f
    feb = D("2025-02-01")
    assert tcs_monthly.yahoo.loc[feb, "open"] == daily.loc[feb, "open"] == 4113.0
    assert tcs_monthly.ours.loc[feb, "open"] == 4113.0
    placeholders = {D("2025-03-18"): D("2025-03-17"), D("2025-11-05"): D("2025-11-03")}
    for placeholder, week in placeholders.items():
        row = daily.loc[placeholder]
        assert row["volume"] == 0
        assert row["open"] == row["high"] == row["low"] == row["close"]
        assert tcs_weekly.ours.loc[week, "sessions"] == 5
        for f in ("open", "high", "low", "close", "volume"):
            assert tcs_weekly.ours.loc[week, f] == tcs_weekly.yahoo.loc[week, f], (week, f)


# ---------------------------------------------------------------------------------------------
# AAPL (auto-adjusted, NASDAQ)
# ---------------------------------------------------------------------------------------------


def test_aapl_prices_differ_exactly_in_ex_dividend_weeks(aapl_weekly: Pair) -> None:
    """yfinance auto-adjusts each weekly bar with the factor Yahoo gives the week, i.e. the one
    in force before its ex-date; daily bars from the ex-date on carry the newer factor. So the
    weekly close sits below ours by the dividend yield, 0.09-0.17% here ("about 0.1-0.2%")."""
    pair, daily = aapl_weekly, aapl_weekly.daily
    in_range = {d: v for d, v in AAPL_DIVIDENDS.items() if d >= daily.index[0]}
    assert len(in_range) == 20
    assert pair.mismatched("close") == {week_of(d) for d in in_range}
    for ex_date, dividend in in_range.items():
        week = week_of(ex_date)
        ours, yahoo = pair.ours.loc[week], pair.yahoo.loc[week]
        gap = ours["close"] / yahoo["close"] - 1
        assert 5e-4 < gap < 2e-3, (week, gap)
        # ≈ dividend / previous close; the adjusted previous close understates the raw one by
        # the later dividends (≤ 3% over these 5 years), so allow 3%.
        prev_close = daily.loc[daily.index[daily.index < ex_date][-1], "close"]
        assert close_enough(gap, dividend / prev_close, rel=0.03), (week, gap)
        # Yahoo's whole bar, rebuilt by hand: sessions on/after the ex-date scaled back to the
        # old factor, earlier sessions as they are.
        week_rows = sessions_in(daily, week, week + timedelta(days=6))
        scale = np.where(week_rows.index >= ex_date, yahoo["close"] / ours["close"], 1.0)
        assert close_enough(yahoo["open"], week_rows["open"].iloc[0] * scale[0])
        assert close_enough(yahoo["high"], (week_rows["high"] * scale).max())
        assert close_enough(yahoo["low"], (week_rows["low"] * scale).min())
        assert ours["volume"] == yahoo["volume"]


def test_aapl_first_partial_week(aapl_weekly: Pair) -> None:
    """The daily file starts on Wednesday 2021-03-24: our week has 3 sessions, Yahoo's 5, and
    ours must lie inside Yahoo's (same last session, so the same close)."""
    ours, yahoo = aapl_weekly.ours.loc[AAPL_FIRST_WEEK], aapl_weekly.yahoo.loc[AAPL_FIRST_WEEK]
    assert aapl_weekly.daily.index[0] == D("2021-03-24")
    assert ours["sessions"] == 3
    assert ours["open"] != yahoo["open"]
    assert ours["high"] < yahoo["high"]
    assert ours["low"] >= yahoo["low"]
    assert close_enough(ours["close"], yahoo["close"])
    assert ours["volume"] < yahoo["volume"]
    assert ours["volume"] == 281_446_400


def test_aapl_in_progress_last_week(aapl_weekly: Pair) -> None:
    """The last daily bar (2026-03-24) is intraday; the weekly file was fetched moments later
    with 1,025 more shares traded. Prices agree; the week is provisional."""
    ours, yahoo = aapl_weekly.ours.loc[AAPL_LAST_WEEK], aapl_weekly.yahoo.loc[AAPL_LAST_WEEK]
    assert aapl_weekly.daily.loc[D("2026-03-24"), "volume"] == 11_899_734
    assert ours["sessions"] == 2
    assert yahoo["volume"] - ours["volume"] == 1_025
    for f in ("open", "high", "low", "close"):
        assert close_enough(ours[f], yahoo[f]), f
    flags = aapl_weekly.ours["provisional"]
    assert list(flags.index[flags]) == [AAPL_LAST_WEEK]


def test_aapl_us_holiday_mondays_have_no_phantom_open(aapl_weekly: Pair) -> None:
    """Unlike NSE, a US holiday Monday does not move Yahoo's weekly open: it is Tuesday's."""
    daily = aapl_weekly.daily
    weeks = [w for w in aapl_weekly.common if w > daily.index[0] and w not in daily.index]
    assert len(weeks) == 28  # SOURCES.md says 27; the files hold 28 (2021-05-31 … 2026-02-16)
    for week in weeks:
        tuesday = daily.index[daily.index > week][0]
        assert tuesday == week + timedelta(days=1)
        assert close_enough(aapl_weekly.yahoo.loc[week, "open"], daily.loc[tuesday, "open"])
        for f in FIELDS:
            assert week not in aapl_weekly.mismatched(f), (week, f)


# ---------------------------------------------------------------------------------------------
# AET.L (LSE, newest row first, tz-aware index)
# ---------------------------------------------------------------------------------------------


def test_aet_five_overlapping_weeks_match_exactly(aet_weekly: Pair) -> None:
    weeks = [D("2022-05-02"), D("2022-05-09"), D("2022-05-16"), D("2022-05-23"), D("2022-05-30")]
    assert aet_weekly.common == weeks
    for week in weeks:
        for f in FIELDS:
            assert aet_weekly.ours.loc[week, f] == aet_weekly.yahoo.loc[week, f], (week, f)
    # 2022-05-02 was a UK bank holiday: the daily file starts on Tuesday the 3rd.
    assert aet_weekly.daily.index[0] == D("2022-05-03")
    # The week of the GBP/GBp unit flip: Yahoo aggregated the same raw 100x rows we did.
    flip = aet_weekly.yahoo.loc[D("2022-05-16")]
    assert (flip["open"], flip["high"], flip["low"], flip["close"], flip["volume"]) == (
        14.550000190734863,
        14.550000190734863,
        0.14550000429153442,
        0.14550000429153442,
        532_454,
    )
    # The daily file runs a week further than the weekly one; that week is still open.
    assert list(aet_weekly.ours.index[aet_weekly.ours["provisional"]]) == [D("2022-06-06")]
    assert D("2022-06-06") not in aet_weekly.yahoo.index
