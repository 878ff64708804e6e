"""Weekly and monthly bars built from one symbol's daily bars.

A period is a calendar week (Monday to Sunday) or a calendar month. It is labelled by its first
calendar day (the Monday, even when the exchange was shut that Monday, or the 1st) because that
is how Yahoo labels its own 1wk/1mo bars, so ours line up with theirs date for date.
The rules are the plain ones: open = first session's open, high = max, low = min,
close and adj_close = last session's, volume = sum, sessions = how many daily bars.

Known, deliberate differences from Yahoo's own weekly/monthly bars (see
tests/fixtures/yahoo/SOURCES.md §5 and tests/test_weekly_vs_yahoo.py):
- NSE weeks whose Monday was a holiday: Yahoo opens the week at the previous Friday's close, as
  if the holiday were a phantom bar. We keep the first real session's open.
- adj_close in a week holding an ex-dividend date: Yahoo applies the dividend factor to the
  whole week; we keep the last session's adj_close as stored.

Why numpy over sorted indices rather than `Table.group_by`: the rows are sorted by date, so each
period is a contiguous run and one pass of `ufunc.reduceat` over the run starts gives every
aggregate with no hashing and no dependence on aggregation order (20 years take well under 1 ms).

Pure: no clock. Which periods are still open is the caller's knowledge (`complete_through`,
derived from the exchange calendar), so this module needs no calendar.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.schema import PERIOD_SCHEMA, VALUE_COLUMNS

INTERVALS: tuple[str, ...] = ("1wk", "1mo")

_EPOCH = date(1970, 1, 1)
# 1970-01-01 (day 0) was a Thursday: day d is (d + 3) % 7 days after the Monday of its week.
_THURSDAY_TO_MONDAY = 3


def _labels(dates: pa.ChunkedArray, days: np.ndarray, interval: str) -> np.ndarray:
    """The period label (its first calendar day, as days since epoch) of every day.

    Integer arithmetic on days since epoch: numpy's floor modulo also handles dates before
    1970, and the day of the month comes from Arrow (faster than datetime64[M] round trips).
    """
    if interval == "1wk":
        return days - (days + _THURSDAY_TO_MONDAY) % 7
    return days - (pc.day(dates).to_numpy() - 1)


def _last_days(labels: np.ndarray, interval: str) -> np.ndarray:
    """The last calendar day (Sunday / month end) of the periods starting at `labels`."""
    if interval == "1wk":
        return labels + 6
    months = labels.astype("datetime64[D]").astype("datetime64[M]")
    return (months + 1).astype("datetime64[D]").astype(np.int64) - 1


def aggregate(bars: pa.Table, interval: str, complete_through: date | None) -> pa.Table:
    """One PERIOD_SCHEMA row per week ("1wk") or month ("1mo") that has at least one bar.

    `bars` are one symbol's validated daily bars (BAR_SCHEMA, unique dates; sorted here if they
    are not). A period is provisional when its last calendar day is after `complete_through`:
    a later session may still join it. `complete_through=None` marks nothing provisional.

    Raises ValueError for an unknown interval, for nulls (validated bars have none, and a
    period built over a hole would look complete), for repeated dates and for mixed symbols:
    each would otherwise produce plausible-looking but wrong periods.
    """
    if interval not in INTERVALS:
        raise ValueError(f"unknown interval {interval!r}: expected one of {INTERVALS}")
    n = bars.num_rows
    if n == 0:
        return PERIOD_SCHEMA.empty_table()
    for name in ("symbol", "date", *VALUE_COLUMNS):
        if bars.column(name).null_count:
            raise ValueError(f"column {name!r} has nulls: aggregate takes validated bars only")

    days = bars.column("date").cast(pa.int32()).to_numpy().astype(np.int64)
    if n > 1 and not (np.diff(days) > 0).all():
        order = np.argsort(days, kind="stable")
        days = days[order]
        if not (np.diff(days) > 0).all():
            raise ValueError("repeated dates: aggregate takes one symbol's unique daily bars")
        bars = bars.take(pa.array(order))

    symbols = bars.column("symbol")
    if not pc.all(pc.equal(symbols, symbols[0])).as_py():
        raise ValueError("mixed symbols: aggregate takes one symbol's bars")

    labels = _labels(bars.column("date"), days, interval)
    # Sorted dates make every period one contiguous run: its first and last row indices.
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], n] - 1
    period_labels = labels[starts]

    def values(name: str) -> np.ndarray:
        return bars.column(name).to_numpy()

    if complete_through is None:
        provisional = np.zeros(len(starts), dtype=bool)
    else:
        provisional = _last_days(period_labels, interval) > (complete_through - _EPOCH).days

    columns = {
        "symbol": symbols.take(pa.array(starts)),
        "date": pa.array(period_labels.astype(np.int32), pa.int32()).cast(pa.date32()),
        "open": values("open")[starts],
        "high": np.maximum.reduceat(values("high"), starts),
        "low": np.minimum.reduceat(values("low"), starts),
        "close": values("close")[ends],
        "adj_close": values("adj_close")[ends],
        "volume": np.add.reduceat(values("volume"), starts),
        "sessions": (ends - starts + 1).astype(np.int32),
        "provisional": provisional,
    }
    return pa.table(columns, schema=PERIOD_SCHEMA)
