"""Validation: which provider rows may enter the lake, and why the others may not.

Every row refused is returned with a reason (it is quarantined, never dropped silently):

| reason               | rule                                                              |
|----------------------|-------------------------------------------------------------------|
| missing_value        | a price or the volume is null                                     |
| not_finite           | a price is NaN or ±inf                                            |
| non_positive_price   | a price ≤ 0                                                       |
| negative_volume      | volume < 0                                                        |
| high_below_open_close| high < max(open, close) (beyond float32 noise)                    |
| low_above_open_close | low > min(open, close) (beyond float32 noise)                     |
| future_date          | date after `today`                                                |
| duplicate_date       | the provider sent the date more than once (all copies refused)    |
| holiday_placeholder  | a non-session day with O=H=L=C and volume 0: Yahoo's filler row   |
| not_a_session        | a non-session day: no volume and not a placeholder, or, inside   |
|                      | the calendar's authoritative range, any row at all                |

Decisions (documented in docs/data-quality.md):
- Yahoo's zero-volume holiday rows (O=H=L=C = previous close, volume 0) on days the exchange
  was closed are quarantined as `holiday_placeholder`. The same flat zero-volume shape on a real
  session is kept: a suspended stock really has such sessions, and the profile reports them as
  zero-volume runs.
- A row on a day the calendar says is closed is refused as `not_a_session`, even with volume:
  Yahoo emits such rows for days no exchange traded (^GSPC on 2018-07-04 and 2001-09-12, a
  Saturday). Exceptional sessions the exchange really held (NSE's budget Saturday 2025-02-01,
  the Diwali Muhurat sessions) are sessions of the calendar (`calendar.EXCEPTIONAL_SESSIONS`),
  so their rows pass. Outside the calendar's authoritative range (before 1970, after its last
  published year) holidays are unknown: a closed-day row with volume is kept there and counted
  by the profile as `unscheduled_sessions`.
- Duplicated dates: we cannot tell which copy is right, so every copy is refused and the day
  stays a visible gap rather than a silent guess.

Separately, a bar whose session had not closed when the provider answered is *provisional*
(Yahoo's in-progress bar). It is not bad data, so it is not quarantined: it is set aside and not
stored; the final bar arrives with a later fetch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from barlake.core.schema import BAR_SCHEMA, PRICE_COLUMNS, QUARANTINE_SCHEMA

if TYPE_CHECKING:
    from barlake.core.calendar import TradingCalendar

# Yahoo's prices are float32; an adjusted OHLC quadruple can violate high ≥ close by an ulp.
OHLC_REL_TOL = 1e-6


@dataclass(frozen=True)
class Validated:
    good: pa.Table  # BAR_SCHEMA, sorted by date, unique dates, final sessions only
    quarantined: pa.Table  # QUARANTINE_SCHEMA
    provisional: pa.Table  # BAR_SCHEMA: in-progress bars set aside

    @property
    def reasons(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.quarantined.column("reason").to_pylist():
            counts[r] = counts.get(r, 0) + 1
        return counts


def _np(table: pa.Table, name: str, dtype: type = np.float64) -> np.ndarray:
    col = table.column(name)
    return col.to_numpy(zero_copy_only=False).astype(dtype, copy=False)


def row_reasons(bars: pa.Table, calendar: TradingCalendar, today: date) -> list[str | None]:
    """The first reason each row must be refused for, or None for a good row."""
    n = bars.num_rows
    reasons: list[str | None] = [None] * n
    if n == 0:
        return reasons

    def mark(mask: np.ndarray, reason: str) -> None:
        for i in np.flatnonzero(mask):
            if reasons[i] is None:
                reasons[i] = reason

    nulls = np.zeros(n, dtype=bool)
    for name in (*PRICE_COLUMNS, "volume"):
        nulls |= pc.is_null(bars.column(name)).to_numpy(zero_copy_only=False)
    mark(nulls, "missing_value")

    prices = {name: _np(bars, name) for name in PRICE_COLUMNS}  # nulls become NaN
    finite = np.ones(n, dtype=bool)
    for arr in prices.values():
        finite &= np.isfinite(arr) | nulls
    mark(~finite, "not_finite")
    with np.errstate(invalid="ignore"):
        positive = np.ones(n, dtype=bool)
        for arr in prices.values():
            positive &= (arr > 0) | ~np.isfinite(arr)
        mark(~positive, "non_positive_price")
        volume = bars.column("volume").fill_null(0).to_numpy(zero_copy_only=False)
        mark(volume < 0, "negative_volume")
        o, h, lo, c = prices["open"], prices["high"], prices["low"], prices["close"]
        top = np.maximum(o, c)
        bottom = np.minimum(o, c)
        mark(h < top * (1 - OHLC_REL_TOL), "high_below_open_close")
        mark(lo > bottom * (1 + OHLC_REL_TOL), "low_above_open_close")

    days = bars.column("date").cast(pa.int32()).to_numpy(zero_copy_only=False)
    today_days = (today - date(1970, 1, 1)).days
    mark(days > today_days, "future_date")

    uniq, counts = np.unique(days, return_counts=True)
    mark(np.isin(days, uniq[counts > 1]), "duplicate_date")

    sessions = calendar.is_session(bars.column("date").combine_chunks()).to_numpy(
        zero_copy_only=False
    )
    flat = (o == h) & (h == lo) & (lo == c)
    mark(~sessions & flat & (volume == 0), "holiday_placeholder")
    mark(~sessions & (volume <= 0), "not_a_session")
    first = (calendar.first - date(1970, 1, 1)).days
    last = (calendar.last - date(1970, 1, 1)).days
    mark(~sessions & (days >= first) & (days <= last), "not_a_session")
    return reasons


def _session_close(calendar: TradingCalendar, day: date) -> datetime:
    try:
        return calendar.session_close_utc(day)
    except (KeyError, ValueError):
        # An unscheduled session (not in the calendar): treat it as closed at next midnight UTC.
        return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1)


def validate(
    bars: pa.Table,
    *,
    calendar: TradingCalendar,
    today: date,
    as_of: datetime | None = None,
) -> Validated:
    """Split provider rows into good, quarantined and provisional.

    `today` bounds future dates; `as_of` (aware) is when the provider's data was current: a
    bar whose session closes after it is provisional. None means every bar is final.
    """
    bars = bars.select(BAR_SCHEMA.names).cast(BAR_SCHEMA).combine_chunks()
    reasons = row_reasons(bars, calendar, today)
    bad = np.array([r is not None for r in reasons], dtype=bool)
    quarantined = bars.filter(pa.array(bad)).append_column(
        QUARANTINE_SCHEMA.field("reason"),
        pa.array([r for r in reasons if r is not None], pa.string()),
    )
    good = bars.filter(pa.array(~bad))
    good = good.take(pc.sort_indices(good, [("date", "ascending")]))

    provisional_mask = np.zeros(good.num_rows, dtype=bool)
    if as_of is not None and good.num_rows:
        # Only the last rows can still be open; check from the end and stop at the first final.
        dates = good.column("date").to_pylist()
        for i in range(good.num_rows - 1, -1, -1):
            if _session_close(calendar, dates[i]) > as_of:
                provisional_mask[i] = True
            else:
                break
    provisional = good.filter(pa.array(provisional_mask))
    good = good.filter(pa.array(~provisional_mask))
    return Validated(good=good, quarantined=quarantined, provisional=provisional)
