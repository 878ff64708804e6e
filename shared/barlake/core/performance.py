"""Performance statistics of a price series, alone and against a benchmark.

Pure numpy over closes (the caller passes `adjust=total` closes: splits and dividends, so a
return is a total return). The definitions are empyrical-reloaded's, so the numbers are the
ones pyfolio/zipline users know; tests/test_performance.py checks each against empyrical
called directly. With r the simple returns (close / previous close − 1) of n periods and A the
periods per year (`periods_per_year`: 252 on an exchange calendar, 365 for crypto, which
trades every day):

- total return = Π(1 + r) − 1; CAGR = Π(1 + r)^(A / n) − 1;
- volatility = std(r, ddof=1) × √A;
- Sharpe = mean(r − rf) / std(r − rf, ddof=1) × √A;
- Sortino = mean(r − rf) × A / (√mean(min(r − rf, 0)²) × √A);
- max drawdown = min over t of wealth_t / max_{s≤t} wealth_s − 1, with its peak (the last
  high before the trough), trough and recovery (first close back at the peak; null if never);
- Calmar = CAGR / |max drawdown|;
- beta = cov(r, b) / var(b); alpha = (1 + mean(r − rf − beta × (b − rf)))^A − 1;
  correlation = Pearson's of r and b;
- rf is the per-period rate of the annual `risk_free`: (1 + risk_free)^(1/A) − 1.

Pairs (benchmark, correlation matrix) are aligned on the dates both have: the returns are
taken between consecutive common dates, so a crypto weekend is part of Monday's return against
an exchange-listed benchmark, and the pair's A is the smaller of the two. A statistic that is
undefined (fewer than two returns, zero variance, no drawdown for Calmar) is None, never zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

SESSIONS_PER_YEAR = 252  # an exchange calendar (empyrical's DAILY)
DAYS_PER_YEAR = 365  # a 24/7 market (crypto)


def periods_per_year(calendar_code: str) -> int:
    """Annualisation factor of daily returns on a calendar (barlake.core.calendar codes)."""
    from barlake.core.calendar import ALWAYS

    return DAYS_PER_YEAR if calendar_code == ALWAYS else SESSIONS_PER_YEAR


def simple_returns(closes: np.ndarray) -> np.ndarray:
    closes = np.asarray(closes, dtype=np.float64)
    return closes[1:] / closes[:-1] - 1.0


def per_period_rate(annual: float, ann: int) -> float:
    return (1.0 + annual) ** (1.0 / ann) - 1.0


def _num(x: float | np.floating) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def total_return(r: np.ndarray) -> float:
    return float(np.prod(1.0 + r) - 1.0) if len(r) else math.nan


def cagr(r: np.ndarray, ann: int) -> float:
    if len(r) < 1:
        return math.nan
    return float(np.prod(1.0 + r) ** (ann / len(r)) - 1.0)


def volatility(r: np.ndarray, ann: int) -> float:
    return float(np.std(r, ddof=1) * math.sqrt(ann)) if len(r) >= 2 else math.nan


def sharpe(r: np.ndarray, ann: int, rf: float = 0.0) -> float:
    if len(r) < 2:
        return math.nan
    x = r - rf
    sd = np.std(x, ddof=1)
    return float(np.mean(x) / sd * math.sqrt(ann)) if sd > 0 else math.nan


def downside_risk(r: np.ndarray, ann: int, required: float = 0.0) -> float:
    if len(r) < 1:
        return math.nan
    d = np.minimum(r - required, 0.0)
    return float(math.sqrt(np.mean(d * d)) * math.sqrt(ann))


def sortino(r: np.ndarray, ann: int, required: float = 0.0) -> float:
    if len(r) < 2:
        return math.nan
    dr = downside_risk(r, ann, required)
    return float(np.mean(r - required) * ann / dr) if dr > 0 else math.nan


def drawdowns(r: np.ndarray) -> np.ndarray:
    """Drawdown after each return (wealth / running peak − 1), the start counting as a peak."""
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + r)))
    return (wealth / np.maximum.accumulate(wealth) - 1.0)[1:]


@dataclass(frozen=True)
class Drawdown:
    depth: float  # ≤ 0; nan with no returns
    peak: int | None  # indices into the closes (0 = the first close)
    trough: int | None
    recovery: int | None


def max_drawdown(r: np.ndarray) -> Drawdown:
    if len(r) == 0:
        return Drawdown(math.nan, None, None, None)
    wealth = np.concatenate(([1.0], np.cumprod(1.0 + r)))
    peak_value = np.maximum.accumulate(wealth)
    dd = wealth / peak_value - 1.0
    trough = int(np.argmin(dd))
    depth = float(dd[trough])
    if depth >= 0:
        return Drawdown(0.0, None, None, None)
    peak = int(np.flatnonzero(wealth[: trough + 1] == peak_value[trough])[-1])
    after = np.flatnonzero(wealth[trough + 1 :] >= peak_value[trough])
    recovery = int(trough + 1 + after[0]) if len(after) else None
    return Drawdown(depth, peak, trough, recovery)


def calmar(r: np.ndarray, ann: int) -> float:
    dd = max_drawdown(r).depth
    if not dd < 0:
        return math.nan
    value = cagr(r, ann) / abs(dd)
    return value if math.isfinite(value) else math.nan


def beta(r: np.ndarray, b: np.ndarray) -> float:
    if len(r) < 2:
        return math.nan
    rb = b - b.mean()
    var = np.mean(rb * rb)
    return float(np.mean(rb * r) / var) if var >= 1e-30 else math.nan


def alpha(r: np.ndarray, b: np.ndarray, ann: int, rf: float = 0.0) -> float:
    if len(r) < 2:
        return math.nan
    bt = beta(r, b)
    return float((1.0 + np.mean((r - rf) - bt * (b - rf))) ** ann - 1.0)


def correlation(r: np.ndarray, b: np.ndarray) -> float:
    if len(r) < 2:
        return math.nan
    sr, sb = np.std(r), np.std(b)
    if sr == 0 or sb == 0:
        return math.nan
    return float(np.mean((r - r.mean()) * (b - b.mean())) / (sr * sb))


# --------------------------------------------------------------------------- alignment


def align(
    dates_a: np.ndarray, closes_a: np.ndarray, dates_b: np.ndarray, closes_b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The dates both series have (sorted), with each one's close on them."""
    common, ia, ib = np.intersect1d(dates_a, dates_b, assume_unique=True, return_indices=True)
    return common, np.asarray(closes_a)[ia], np.asarray(closes_b)[ib]


# --------------------------------------------------------------------------- summaries


def _day(dates: Sequence[date] | np.ndarray, i: int | None) -> str | None:
    if i is None:
        return None
    d = dates[i]
    return d.isoformat() if isinstance(d, date) else str(np.datetime64(d, "D"))


def summary(
    dates: np.ndarray,
    closes: np.ndarray,
    ann: int,
    risk_free: float = 0.0,
) -> dict[str, Any]:
    """Every single-series statistic of the closes (oldest first, dates as datetime64[D])."""
    r = simple_returns(closes)
    rf = per_period_rate(risk_free, ann)
    dd = max_drawdown(r)
    best = int(np.argmax(r)) if len(r) else None
    worst = int(np.argmin(r)) if len(r) else None
    return {
        "start": _day(dates, 0) if len(dates) else None,
        "end": _day(dates, len(dates) - 1) if len(dates) else None,
        "observations": len(r),
        "periods_per_year": ann,
        "total_return": _num(total_return(r)),
        "cagr": _num(cagr(r, ann)),
        "volatility": _num(volatility(r, ann)),
        "sharpe": _num(sharpe(r, ann, rf)),
        "sortino": _num(sortino(r, ann, rf)),
        "max_drawdown": _num(dd.depth),
        "max_drawdown_peak": _day(dates, dd.peak),
        "max_drawdown_trough": _day(dates, dd.trough),
        "max_drawdown_recovery": _day(dates, dd.recovery),
        "calmar": _num(calmar(r, ann)),
        "best_day": _num(r[best]) if best is not None else None,
        "best_day_date": _day(dates, best + 1) if best is not None else None,
        "worst_day": _num(r[worst]) if worst is not None else None,
        "worst_day_date": _day(dates, worst + 1) if worst is not None else None,
    }


def versus(
    dates: np.ndarray,
    closes: np.ndarray,
    bench_dates: np.ndarray,
    bench_closes: np.ndarray,
    ann: int,
    risk_free: float = 0.0,
) -> dict[str, Any]:
    """beta, alpha and correlation against a benchmark, over the dates both have."""
    _, a, b = align(dates, closes, bench_dates, bench_closes)
    r, rb = simple_returns(a), simple_returns(b)
    rf = per_period_rate(risk_free, ann)
    return {
        "observations": len(r),
        "periods_per_year": ann,
        "beta": _num(beta(r, rb)),
        "alpha": _num(alpha(r, rb, ann, rf)),
        "correlation": _num(correlation(r, rb)),
    }


def correlation_matrix(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> list[list[float | None]]:
    """Pearson correlation of daily returns, each pair over the dates both have."""
    n = len(series)
    out: list[list[float | None]] = [[None] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            if i == j:
                ok = len(series[i][1]) >= 3
                out[i][j] = 1.0 if ok and np.std(simple_returns(series[i][1])) > 0 else None
                continue
            _, a, b = align(series[i][0], series[i][1], series[j][0], series[j][1])
            out[i][j] = out[j][i] = _num(correlation(simple_returns(a), simple_returns(b)))
    return out


# --------------------------------------------------------------------------- rolling

ROLLING = ("return", "volatility", "sharpe", "sortino", "max_drawdown", "beta", "correlation")


def rolling(
    closes: np.ndarray,
    window: int,
    ann: int,
    risk_free: float = 0.0,
    bench_closes: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Each statistic over the `window` returns ending at each close (NaN before that).

    Arrays are as long as the closes; element i covers returns i−window+1 … i (return i is
    close i / close i−1 − 1). `bench_closes`, when given, are on the same dates.
    """
    n = len(closes)
    out = {k: np.full(n, np.nan) for k in ROLLING}
    r = simple_returns(closes)
    if window < 2 or len(r) < window:
        return out
    rf = per_period_rate(risk_free, ann)
    w = sliding_window_view(r, window)
    x = w - rf
    tail = slice(window, n)
    out["return"][tail] = np.prod(1.0 + w, axis=1) - 1.0
    sd = np.std(w, ddof=1, axis=1)
    out["volatility"][tail] = sd * math.sqrt(ann)
    sdx = np.std(x, ddof=1, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["sharpe"][tail] = np.where(sdx > 0, x.mean(axis=1) / sdx * math.sqrt(ann), np.nan)
        down = np.sqrt(np.mean(np.minimum(x, 0.0) ** 2, axis=1)) * math.sqrt(ann)
        out["sortino"][tail] = np.where(down > 0, x.mean(axis=1) * ann / down, np.nan)
    wealth = np.cumprod(1.0 + w, axis=1)
    peaks = np.maximum(np.maximum.accumulate(wealth, axis=1), 1.0)
    out["max_drawdown"][tail] = np.minimum((wealth / peaks - 1.0).min(axis=1), 0.0)
    if bench_closes is not None:
        wb = sliding_window_view(simple_returns(bench_closes), window)
        db = wb - wb.mean(axis=1, keepdims=True)
        dr = w - w.mean(axis=1, keepdims=True)
        cov = np.mean(db * dr, axis=1)
        var_b = np.mean(db * db, axis=1)
        var_r = np.mean(dr * dr, axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["beta"][tail] = np.where(var_b >= 1e-30, cov / var_b, np.nan)
            out["correlation"][tail] = np.where(
                (var_b > 0) & (var_r > 0), cov / np.sqrt(var_b * var_r), np.nan
            )
    return out
