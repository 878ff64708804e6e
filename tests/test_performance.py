"""barlake.core.performance against empyrical-reloaded called directly, on real series.

Data: 20 years of S&P 500 and NASDAQ Composite (arch.data, 5,031 sessions, total-return
closes = Yahoo's Adj Close), and NVDA/MSFT 2021 from the Yahoo recordings. Tolerance: rtol
1e-9 (the same formulas summed in a different order differ by float noise only, ~1e-14);
drawdown dates are checked against empyrical's drawdown series exactly.
"""

from __future__ import annotations

import math
from datetime import date

import empyrical as ep
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics_data import MSFT, NVDA, arch_bars, column, recorded
from barlake.core import performance as perf
from barlake.core.adjust import adjust
from barlake.core.calendar import ALWAYS

RTOL = 1e-9


def total_closes(bars: pa.Table, actions: pa.Table | None = None) -> tuple[np.ndarray, np.ndarray]:
    from barlake.core.schema import empty_actions

    t = adjust(bars, actions if actions is not None else empty_actions(), "total")
    return t.column("date").to_numpy().astype("datetime64[D]"), column(t, "close")


@pytest.fixture(scope="module")
def sp500() -> tuple[np.ndarray, np.ndarray]:
    return total_closes(arch_bars())


@pytest.fixture(scope="module")
def nasdaq() -> tuple[np.ndarray, np.ndarray]:
    return total_closes(arch_bars("nasdaq", "^IXIC"))


def series(dates: np.ndarray, closes: np.ndarray) -> pd.Series:
    return pd.Series(closes, index=pd.DatetimeIndex(dates)).pct_change().iloc[1:]


def close(a: float | None, b: float) -> bool:
    return a is not None and math.isclose(a, float(b), rel_tol=RTOL, abs_tol=1e-15)


@pytest.mark.parametrize("risk_free", [0.0, 0.03])
def test_summary_equals_empyrical_on_20_years_of_sp500(sp500, risk_free: float) -> None:
    dates, closes = sp500
    r = series(dates, closes)
    ann = 252
    rf = (1 + risk_free) ** (1 / ann) - 1
    got = perf.summary(dates, closes, ann, risk_free)
    assert got["observations"] == 5030 and got["start"] == "1999-01-04"
    assert close(got["total_return"], ep.cum_returns_final(r))
    assert close(got["cagr"], ep.annual_return(r, annualization=ann))
    assert close(got["cagr"], ep.cagr(r, annualization=ann))
    assert close(got["volatility"], ep.annual_volatility(r, annualization=ann))
    assert close(got["sharpe"], ep.sharpe_ratio(r, risk_free=rf, annualization=ann))
    assert close(got["sortino"], ep.sortino_ratio(r, required_return=rf, annualization=ann))
    assert close(got["max_drawdown"], ep.max_drawdown(r))
    assert close(got["calmar"], ep.calmar_ratio(r, annualization=ann))
    assert close(got["best_day"], r.max()) and got["best_day_date"] == str(r.idxmax().date())
    assert close(got["worst_day"], r.min()) and got["worst_day_date"] == str(r.idxmin().date())


def test_max_drawdown_dates(sp500) -> None:
    """The 2007–2009 drawdown: peak 2007-10-09, trough 2009-03-09 (−56.8 %), back at the peak's
    close on 2013-03-28 (^GSPC is a price index: its adjusted close is its close)."""
    dates, closes = sp500
    got = perf.summary(dates, closes, 252)
    dd = ep.stats.drawdown_series(series(dates, closes))
    trough = dd.idxmin()
    assert got["max_drawdown_trough"] == str(trough.date()) == "2009-03-09"
    wealth = pd.Series(closes, index=pd.DatetimeIndex(dates))
    peak = wealth[:trough].idxmax()
    assert got["max_drawdown_peak"] == str(peak.date()) == "2007-10-09"
    recovered = wealth[trough:][wealth[trough:] >= wealth[peak]].index[0]
    assert got["max_drawdown_recovery"] == str(recovered.date()) == "2013-03-28"
    assert dd[recovered] == 0 and (dd[trough:recovered].iloc[:-1] < 0).all()


def test_unrecovered_drawdown_has_no_recovery_date() -> None:
    dates = np.arange("2024-01-01", "2024-01-06", dtype="datetime64[D]")
    got = perf.summary(dates, np.array([10.0, 12.0, 9.0, 11.0, 11.5]), 252)
    assert got["max_drawdown_peak"] == "2024-01-02"
    assert got["max_drawdown_trough"] == "2024-01-03"
    assert got["max_drawdown_recovery"] is None
    assert close(got["max_drawdown"], 9 / 12 - 1)


@pytest.mark.parametrize("risk_free", [0.0, 0.02])
def test_beta_alpha_correlation_equal_empyrical(sp500, nasdaq, risk_free: float) -> None:
    (d, c), (bd, bc) = nasdaq, sp500
    r, b = series(d, c), series(bd, bc)
    rf = (1 + risk_free) ** (1 / 252) - 1
    got = perf.versus(d, c, bd, bc, 252, risk_free)
    e_alpha, e_beta = ep.alpha_beta(r, b, risk_free=rf, annualization=252)
    assert close(got["beta"], e_beta) and 1.1 < got["beta"] < 1.4
    assert close(got["alpha"], e_alpha)
    assert close(got["correlation"], r.corr(b))


def test_benchmark_on_another_calendar_is_aligned_on_common_dates(sp500) -> None:
    """A 24/7 series against an exchange-listed benchmark: returns between common dates."""
    bd, bc = sp500
    days = np.arange(bd[0], bd[-1] + 1, dtype="datetime64[D]")
    # a "crypto" path: the S&P 500's total-return closes carried over weekends, with a
    # weekend drift of +0.1%/day, so weekend moves land in Monday's return
    idx = np.searchsorted(bd, days, side="right") - 1
    drift = np.cumprod(np.where(np.isin(days, bd), 1.0, 1.001))
    cc = bc[idx] * drift
    got = perf.versus(days, cc, bd, bc, 252)
    aligned = pd.Series(cc, index=pd.DatetimeIndex(days))[pd.DatetimeIndex(bd)]
    r, b = aligned.pct_change().iloc[1:], series(bd, bc)
    e_alpha, e_beta = ep.alpha_beta(r, b, annualization=252)
    assert close(got["beta"], e_beta) and close(got["alpha"], e_alpha)
    assert got["observations"] == len(bd) - 1
    assert perf.periods_per_year(ALWAYS) == 365 and perf.periods_per_year("XNYS") == 252
    own = perf.summary(days, cc, 365)
    rr = series(days, cc)
    assert close(own["cagr"], ep.annual_return(rr, annualization=365))
    assert close(own["volatility"], ep.annual_volatility(rr, annualization=365))


@pytest.mark.parametrize("window", [21, 63, 252])
def test_rolling_equal_empyrical(sp500, nasdaq, window: int) -> None:
    (d, c), (bd, bc) = nasdaq, sp500
    r, b = series(d, c), series(bd, bc)
    got = perf.rolling(c, window, 252, 0.0, bc)
    n = len(c)
    assert all(len(v) == n for v in got.values())
    assert np.isnan(got["volatility"][:window]).all()
    want = {
        "volatility": ep.roll_annual_volatility(r, window, annualization=252),
        "sharpe": ep.roll_sharpe_ratio(r, window, annualization=252),
        "sortino": ep.roll_sortino_ratio(r, window, annualization=252),
        "max_drawdown": ep.roll_max_drawdown(r, window),
        "beta": ep.roll_beta(r, b, window),
    }
    for name, w in want.items():
        w = np.asarray(w, dtype=np.float64)
        assert len(w) == n - window  # empyrical: one value per full window
        np.testing.assert_allclose(got[name][window:], w, rtol=RTOL, atol=1e-15, err_msg=name)
    corr = r.rolling(window).corr(b).to_numpy()[window - 1 :]
    np.testing.assert_allclose(got["correlation"][window:], corr, rtol=1e-7)
    ret = (1 + r).rolling(window).apply(np.prod, raw=True).to_numpy()[window - 1 :] - 1
    np.testing.assert_allclose(got["return"][window:], ret, rtol=1e-9)


def test_nvda_msft_2021_from_the_yahoo_recordings() -> None:
    """Total-return closes through NVDA's 4:1 split and MSFT's dividends (adjust=total)."""
    nb, na = recorded(NVDA)
    mb, ma = recorded(MSFT)
    (nd, nc), (md, mc) = total_closes(nb, na), total_closes(mb, ma)
    rn, rm = series(nd, nc), series(md, mc)
    assert abs(rn.max()) < 0.2  # no ×4 step on the split day: the split is adjusted
    got = perf.summary(nd, nc, 252)
    assert close(got["sharpe"], ep.sharpe_ratio(rn))
    assert close(got["max_drawdown"], ep.max_drawdown(rn))
    pair = perf.versus(nd, nc, md, mc, 252)
    e_alpha, e_beta = ep.alpha_beta(rn, rm)
    assert close(pair["beta"], e_beta) and close(pair["alpha"], e_alpha)
    matrix = perf.correlation_matrix([(nd, nc), (md, mc)])
    assert matrix[0][0] == matrix[1][1] == 1.0
    assert close(matrix[0][1], rn.corr(rm)) and matrix[0][1] == matrix[1][0]
    dividend_day = date(2021, 2, 17)  # MSFT ex-dividend: the total return includes it
    assert np.datetime64(dividend_day) in md


def test_undefined_statistics_are_none() -> None:
    d = np.array(["2024-01-02"], dtype="datetime64[D]")
    one = perf.summary(d, np.array([10.0]), 252)
    assert one["observations"] == 0
    assert all(one[k] is None for k in ("total_return", "volatility", "sharpe", "calmar"))
    flat_d = np.arange("2024-01-01", "2024-01-11", dtype="datetime64[D]")
    flat = perf.summary(flat_d, np.full(10, 5.0), 252)
    assert flat["total_return"] == 0.0 and flat["volatility"] == 0.0
    assert flat["sharpe"] is None and flat["sortino"] is None and flat["calmar"] is None
    assert flat["max_drawdown"] == 0.0 and flat["max_drawdown_peak"] is None
    assert perf.versus(flat_d, np.full(10, 5.0), flat_d, np.arange(10.0) + 1, 252)["beta"] == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-0.2, 0.25, allow_nan=False), min_size=3, max_size=80),
    st.floats(0.0, 0.1),
)
def test_laws_against_empyrical(returns: list[float], risk_free: float) -> None:
    r = np.array(returns)
    closes = 100 * np.concatenate(([1.0], np.cumprod(1 + r)))
    dates = np.arange(len(closes)).astype("datetime64[D]")
    got = perf.summary(dates, closes, 252, risk_free)
    rr = pd.Series(closes).pct_change().iloc[1:].to_numpy()
    rf = (1 + risk_free) ** (1 / 252) - 1
    assert got["max_drawdown"] <= 0
    assert math.isclose(got["max_drawdown"], ep.max_drawdown(rr), rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(got["total_return"], ep.cum_returns_final(rr), rel_tol=1e-9, abs_tol=1e-12)
    want = ep.sharpe_ratio(rr, risk_free=rf)
    if got["sharpe"] is not None and np.isfinite(want) and np.std(rr - rf, ddof=1) > 1e-12:
        assert math.isclose(got["sharpe"], want, rel_tol=1e-6)
    if got["max_drawdown_recovery"] is not None:
        assert got["max_drawdown_peak"] < got["max_drawdown_trough"] < got["max_drawdown_recovery"]
