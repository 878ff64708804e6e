"""Market status: is an exchange open at an instant, is today an early close, when does it next
open and close — from exchange_calendars' session opens, closes and breaks.

Pure: the instant is an argument (the API and CLI pass their clock's now, or `at`). Each
exchange's session times are built once per process (a few tenths of a second to ~2 s) with
fixed bounds, never exchange_calendars' clock-relative defaults, as core/calendar.py does:
STATUS_START..calendar.HOUSE_END, clipped to the calendar's own published range. An instant
outside that range is a ValueError naming it.

States: `open`; `break` (a lunch break: XTKS, XHKG…); `closed` with a reason — `weekend`,
`holiday` (a weekday that is not a session), `before_open`, `after_close`. `early_close` is
true on a session whose close is earlier than the exchange's regular close (XNYS at 13:00 ET on
the day after Thanksgiving and on Christmas Eve). Crypto (`ALWAYS`) is always open.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from barlake.core.calendar import ALWAYS, HOUSE_END

STATUS_START = date(2010, 1, 1)


class UnknownExchangeError(ValueError):
    """Not an exchange_calendars code (nor ALWAYS)."""


@dataclass(frozen=True)
class MarketStatus:
    exchange: str
    timezone: str
    at: datetime  # the instant asked about, UTC
    state: str  # open | break | closed
    reason: str  # open | break | weekend | holiday | before_open | after_close
    session: date | None  # the session whose day `at` falls on (local date), if any
    early_close: bool  # that session closes early
    session_open: datetime | None
    session_close: datetime | None
    next_open: datetime | None  # the first open strictly after `at` (None: past the range)
    next_close: datetime | None  # the first close strictly after `at`

    @property
    def is_open(self) -> bool:
        return self.state == "open"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["is_open"] = self.is_open
        for k, v in out.items():
            if isinstance(v, datetime | date):
                out[k] = v.isoformat()
        return out


@dataclass(frozen=True)
class _Times:
    code: str
    tz: str
    first: date
    last: date
    sessions: np.ndarray  # datetime64[D]
    opens: np.ndarray  # int64 UTC epoch seconds
    closes: np.ndarray
    break_starts: np.ndarray | None
    break_ends: np.ndarray | None
    early: np.ndarray  # bool per session
    weekmask: str  # "1111100": Monday..Sunday, 1 = a weekday the exchange trades


def exchanges() -> list[str]:
    import exchange_calendars as xc

    return sorted({*xc.get_calendar_names(include_aliases=False), ALWAYS})


def _epoch(series: Any) -> np.ndarray:
    values = series.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    return values.astype("datetime64[s]").astype(np.int64)


@functools.cache
def _times(code: str) -> _Times:
    from exchange_calendars.calendar_utils import _default_calendar_factories

    factory = _default_calendar_factories.get(code)
    if factory is None:
        raise UnknownExchangeError(f"unknown exchange {code!r} (an exchange_calendars code)")
    lo, hi = factory.bound_min(), factory.bound_max()
    first = max(STATUS_START, lo.date()) if lo is not None else STATUS_START
    last = min(HOUSE_END, hi.date()) if hi is not None else HOUSE_END
    cal = factory(start=first.isoformat(), end=last.isoformat())
    closes = _epoch(cal.closes)
    has_break = bool(cal.has_break)
    early = np.isin(cal.sessions.values, cal.early_closes.values)
    return _Times(
        code,
        str(cal.tz),
        first,
        last,
        cal.sessions.values.astype("datetime64[D]"),
        _epoch(cal.opens),
        closes,
        _epoch(cal.break_starts) if has_break else None,
        _epoch(cal.break_ends) if has_break else None,
        early,
        str(cal.weekmask),
    )


def _utc(seconds: int) -> datetime:
    return datetime.fromtimestamp(int(seconds), UTC)


def status(exchange: str, at: datetime) -> MarketStatus:
    """The exchange's status at the aware instant `at`."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"the instant must be timezone-aware, got {at.isoformat()}")
    at = at.astimezone(UTC)
    if exchange == ALWAYS:
        day = at.date()
        start = datetime.combine(day, time(0), UTC)
        return MarketStatus(
            ALWAYS, "UTC", at, "open", "open", day, False, start, start + timedelta(days=1),
            start + timedelta(days=1), start + timedelta(days=1),
        )  # fmt: skip
    t = _times(exchange)
    local_day = at.astimezone(ZoneInfo(t.tz)).date()
    if not t.first <= local_day <= t.last:
        raise ValueError(f"{exchange}: {at.isoformat()} is outside {t.first}..{t.last}")
    now = int(at.timestamp())
    # The session in progress or the latest one opened: opens are sorted.
    i = int(np.searchsorted(t.opens, now, "right")) - 1
    j = int(np.searchsorted(t.closes, now, "right"))  # first close after now
    next_close = _utc(t.closes[j]) if j < t.closes.size else None
    k = int(np.searchsorted(t.opens, now, "right"))
    next_open = _utc(t.opens[k]) if k < t.opens.size else None
    s = int(np.searchsorted(t.sessions, np.datetime64(local_day, "D")))
    today = s if s < t.sessions.size and t.sessions[s] == np.datetime64(local_day, "D") else None
    if i >= 0 and now < t.closes[i]:  # inside session i
        state = reason = "open"
        if t.break_starts is not None and t.break_ends is not None:
            b0, b1 = t.break_starts[i], t.break_ends[i]
            if b0 > 0 and b0 <= now < b1:
                state = reason = "break"
                next_open = _utc(b1)
        today = i
    elif today is not None:
        state, reason = "closed", ("before_open" if now < t.opens[today] else "after_close")
    else:
        state = "closed"
        reason = "weekend" if t.weekmask[local_day.weekday()] == "0" else "holiday"
    return MarketStatus(
        exchange,
        t.tz,
        at,
        state,
        reason,
        t.sessions[today].astype(date) if today is not None else None,
        bool(t.early[today]) if today is not None else False,
        _utc(t.opens[today]) if today is not None else None,
        _utc(t.closes[today]) if today is not None else None,
        next_open,
        next_close,
    )
