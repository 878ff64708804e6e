"""Trading calendars for Yahoo symbols: which days are sessions, when they close, what is missing.

Gaps are judged against the symbol's own exchange (a holiday or a half day is never a gap, crypto
trades every day), so every symbol is first mapped to a calendar code (`exchange_match`), and each
code is built once into an immutable `TradingCalendar` (`get_calendar`, cached) whose queries are
vectorised numpy look-ups over pyarrow date32 arrays: an ingest validates every fetched batch and
profiles every changed symbol, so `is_session` and `gaps` must cost microseconds, not a pandas
round trip.

Decisions:

- Exchange calendars come from `exchange_calendars`, built with fixed bounds, never its defaults
  (those are "20 years before today", i.e. a clock). The authoritative range of a calendar is
  [max(1970-01-01, the calendar's bound_min), min(2035-12-31, the calendar's bound_max)]:
  - 1970 because exchange_calendars' rule-based holidays come from pandas'
    `AbstractHolidayCalendar`, whose rules only produce dates from 1970-01-01: before that,
    New Year's Day 1960 is a "session" on XNYS. Earlier years would look authoritative and not be.
  - 2035 as a fixed horizon; some calendars stop earlier (XBOM, XSES and XSHG at 2026-12-31,
    XSAU at 2029-12-31) because their holidays are published lists, not rules.
- Outside its authoritative range (down to 1900-01-01 and up to 2100-12-31) a calendar falls back
  to "every weekday is a session", closing at the exchange's regular close time. That keeps the
  pipeline working on old bars (^GSPC from 1927) and after a calendar's last published year
  (NSE data in 2027), at the price of not knowing holidays there. So `gaps` only reports missing
  sessions inside the authoritative range (a missing weekday outside it may be a holiday);
  `first`/`last` tell the caller where that range is. Dates outside 1900..2100 are never
  sessions, and an offset that would leave that span raises ValueError.
- Crypto pairs (BTC-USD) use an in-house 24/7 calendar ("ALWAYS": every day is a session); FX
  (EURUSD=X) an in-house weekday calendar ("WEEKDAYS"). Both have no holidays, are authoritative
  over the whole 1900..2100 span, and close at the next midnight UTC: Yahoo's crypto days are UTC
  days and its FX days end at London midnight, so that is at worst an hour late (a bar is then
  held back as provisional a little longer, never stored early).
- Futures (ES=F, CL=F, GC=F) use CMES: one CME Group calendar for NYMEX/COMEX/CBOT contracts too.
- An unrecognised suffix (FOO.ZZ) or an unlisted ^index is not an error: it falls back to XNYS
  with `ExchangeMatch.known = False`, which the profile publishes as `calendar_known`, so the guess
  is visible instead of silently producing gaps on another exchange's holidays.
- Yahoo suffixes whose exchange_calendars calendar cannot be built with pandas 3 (.TA → XTAE,
  .AT → ASEX: exchange_calendars 4.13 raises in their holiday rules) are deliberately unmapped, so
  they take the visible fallback rather than failing every ingest of those symbols.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

# The whole span a calendar answers for; the authoritative range sits inside it.
SPAN_START = date(1900, 1, 1)
SPAN_END = date(2100, 12, 31)
# Fixed bounds for exchange_calendars (see the module docstring for why these two dates).
HOUSE_START = date(1970, 1, 1)
HOUSE_END = date(2035, 12, 31)

ALWAYS = "ALWAYS"  # 24/7: crypto
WEEKDAYS = "WEEKDAYS"  # Monday to Friday, no holidays: FX
DEFAULT_EXCHANGE = "XNYS"
FUTURES_EXCHANGE = "CMES"

# Yahoo suffix (after the last ".") → exchange_calendars code. Every code is checked to build in
# tests/test_calendar.py.
SUFFIX_EXCHANGES: MappingProxyType[str, str] = MappingProxyType(
    {
        "L": "XLON",  # London
        "IL": "XLON",  # London IOB (international order book)
        "DE": "XETR",  # Xetra
        "F": "XFRA",  # Frankfurt
        "HM": "XHAM",  # Hamburg
        "DU": "XDUS",  # Düsseldorf
        "SG": "XSTU",  # Stuttgart
        "PA": "XPAR",  # Euronext Paris
        "AS": "XAMS",  # Euronext Amsterdam
        "BR": "XBRU",  # Euronext Brussels
        "LS": "XLIS",  # Euronext Lisbon
        "IR": "XDUB",  # Euronext Dublin
        "MC": "XMAD",  # Madrid
        "MI": "XMIL",  # Milan
        "SW": "XSWX",  # SIX Swiss
        "VI": "XWBO",  # Vienna
        "ST": "XSTO",  # Stockholm
        "CO": "XCSE",  # Copenhagen
        "OL": "XOSL",  # Oslo
        "HE": "XHEL",  # Helsinki
        "IC": "XICE",  # Iceland
        "TL": "XTAL",  # Tallinn
        "RG": "XRIS",  # Riga
        "VS": "XLIT",  # Vilnius
        "WA": "XWAR",  # Warsaw
        "PR": "XPRA",  # Prague
        "BD": "XBUD",  # Budapest
        "IS": "XIST",  # Istanbul
        "JO": "XJSE",  # Johannesburg
        "SR": "XSAU",  # Saudi (Tadawul)
        "T": "XTKS",  # Tokyo
        "HK": "XHKG",  # Hong Kong
        "SS": "XSHG",  # Shanghai
        "SZ": "XSHG",  # Shenzhen: same holidays as Shanghai
        "KS": "XKRX",  # Korea (KOSPI)
        "KQ": "XKRX",  # Korea (KOSDAQ)
        "TW": "XTAI",  # Taiwan
        "TWO": "XTAI",  # Taipei Exchange (OTC)
        "NS": "XBOM",  # NSE India: exchange_calendars has BSE only; the two share holidays
        "BO": "XBOM",  # BSE India
        "SI": "XSES",  # Singapore
        "KL": "XKLS",  # Kuala Lumpur
        "JK": "XIDX",  # Indonesia
        "BK": "XBKK",  # Thailand
        "AX": "XASX",  # Australia
        "NZ": "XNZE",  # New Zealand
        "TO": "XTSE",  # Toronto
        "V": "XTSE",  # TSX Venture: TSX holidays
        "CN": "XTSE",  # Canadian Securities Exchange: TSX holidays
        "NE": "XTSE",  # Cboe Canada (NEO): TSX holidays
        "SA": "BVMF",  # B3 São Paulo
        "MX": "XMEX",  # Mexico
        "BA": "XBUE",  # Buenos Aires
        "SN": "XSGO",  # Santiago
    }
)

# Indices have no suffix; the well-known ones are listed so that ^FTSE is judged on London's
# calendar. Any other ^symbol falls back to XNYS visibly (known=False).
INDEX_EXCHANGES: MappingProxyType[str, str] = MappingProxyType(
    {
        **dict.fromkeys(
            [
                "^GSPC",
                "^SPX",
                "^DJI",
                "^DJT",
                "^DJU",
                "^IXIC",
                "^NDX",
                "^RUT",
                "^RUA",
                "^RUI",
                "^NYA",
                "^XAX",
                "^OEX",
                "^SP400",
                "^SP600",
                "^W5000",
                "^SOX",
                "^VIX",
                "^IRX",
                "^FVX",
                "^TNX",
                "^TYX",
            ],
            "XNYS",
        ),
        "^FTSE": "XLON",
        "^FTMC": "XLON",
        "^GDAXI": "XETR",
        "^STOXX50E": "XETR",
        "^FCHI": "XPAR",
        "^AEX": "XAMS",
        "^BFX": "XBRU",
        "^IBEX": "XMAD",
        "^SSMI": "XSWX",
        "^ATX": "XWBO",
        "^OMX": "XSTO",
        "^N225": "XTKS",
        "^HSI": "XHKG",
        "^KS11": "XKRX",
        "^TWII": "XTAI",
        "^BSESN": "XBOM",
        "^NSEI": "XBOM",
        "^STI": "XSES",
        "^KLSE": "XKLS",
        "^JKSE": "XIDX",
        "^AXJO": "XASX",
        "^AORD": "XASX",
        "^NZ50": "XNZE",
        "^GSPTSE": "XTSE",
        "^BVSP": "BVMF",
        "^MXX": "XMEX",
        "^MERV": "XBUE",
    }
)

# Quote currencies of Yahoo crypto pairs (BTC-USD, ETH-EUR, DOGE-USDT). A share class such as
# BRK-B or BF-B never ends in one of these.
CRYPTO_QUOTES: frozenset[str] = frozenset(
    [
        "USD",
        "EUR",
        "GBP",
        "JPY",
        "CAD",
        "AUD",
        "CHF",
        "CNY",
        "KRW",
        "INR",
        "BRL",
        "RUB",
        "USDT",
        "USDC",
        "BUSD",
        "DAI",
        "BTC",
        "ETH",
        "BNB",
    ]
)


# --------------------------------------------------------------------------- symbol → code


@dataclass(frozen=True)
class ExchangeMatch:
    """Which calendar a symbol is judged on, and whether that is knowledge or a guess.

    `known` is False only for the XNYS fallback (unrecognised suffix or ^index), so a profile can
    say "these gaps were judged on a guessed calendar".
    """

    code: str
    known: bool
    reason: str


def exchange_match(symbol: str) -> ExchangeMatch:
    """Map a Yahoo symbol to its calendar code. Never raises: unknown forms fall back to XNYS."""
    s = symbol.strip().upper()
    if s.endswith("=X"):
        return ExchangeMatch(WEEKDAYS, True, "fx (=X)")
    if s.endswith("=F"):
        return ExchangeMatch(FUTURES_EXCHANGE, True, "futures (=F)")
    if s.startswith("^"):
        code = INDEX_EXCHANGES.get(s)
        if code is not None:
            return ExchangeMatch(code, True, "listed index")
        return ExchangeMatch(DEFAULT_EXCHANGE, False, f"unlisted index {s}: XNYS fallback")
    if "." in s:
        suffix = s.rsplit(".", 1)[1]
        code = SUFFIX_EXCHANGES.get(suffix)
        if code is not None:
            return ExchangeMatch(code, True, f"suffix .{suffix}")
        return ExchangeMatch(DEFAULT_EXCHANGE, False, f"unknown suffix .{suffix}: XNYS fallback")
    if "-" in s and s.rsplit("-", 1)[1] in CRYPTO_QUOTES:
        return ExchangeMatch(ALWAYS, True, "crypto pair")
    return ExchangeMatch(DEFAULT_EXCHANGE, True, "no suffix: US listing")


def exchange_for(symbol: str) -> str:
    """The calendar code a symbol's sessions are judged on (see `exchange_match`)."""
    return exchange_match(symbol).code


# --------------------------------------------------------------------------- day numbers


def _day(d: date) -> int:
    """Days since 1970-01-01: the integer behind Arrow's date32."""
    return d.toordinal() - _EPOCH_ORDINAL


def _date(day: int) -> date:
    return date.fromordinal(int(day) + _EPOCH_ORDINAL)


_SPAN_LO = _day(SPAN_START)
_SPAN_HI = _day(SPAN_END)


def _weekdays(lo: int, hi: int) -> np.ndarray:
    """Day numbers of the Mondays..Fridays in [lo, hi] (1970-01-01 was a Thursday)."""
    days = np.arange(lo, hi + 1, dtype=np.int32)
    return days[(days + 3) % 7 < 5]


def _int_days(dates: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """Day numbers of a date array (int32, nulls as 0) and its null mask (None without nulls).

    Timestamps are refused: their calendar date depends on a time zone the caller must choose.
    """
    if isinstance(dates, pa.ChunkedArray):
        dates = dates.chunk(0) if dates.num_chunks == 1 else dates.combine_chunks()
    if pa.types.is_timestamp(dates.type):
        raise TypeError("dates must be date32 (or date64), not timestamps")
    if not pa.types.is_date32(dates.type):
        dates = dates.cast(pa.date32())
    ints = dates.view(pa.int32())
    if dates.null_count:
        mask = dates.is_null().to_numpy(zero_copy_only=False)
        return ints.fill_null(0).to_numpy(), mask
    return ints.to_numpy(), None


def _to_date32(days: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(days, dtype=np.int32), type=pa.int32()).view(pa.date32())


# --------------------------------------------------------------------------- the calendar


class TradingCalendar:
    """The sessions of one exchange over 1900..2100, precomputed as a sorted int32 array.

    Immutable after construction (arrays are read-only), so one instance per code is shared by
    every symbol and thread. Build it with `get_calendar(code)` / `calendar_for(symbol)`.
    """

    __slots__ = (
        "_closes",
        "_first_index",
        "_is_session",
        "_regular_close",
        "_sessions",
        "code",
        "first",
        "last",
        "timezone",
    )

    def __init__(
        self,
        code: str,
        *,
        timezone: str,
        first: date,
        last: date,
        sessions: np.ndarray,
        closes: np.ndarray | None,
        regular_close: tuple[time, int] | None,
    ) -> None:
        """`sessions`: sorted day numbers over the whole span (fallback weekdays included);
        `closes`: UTC epoch seconds of the sessions in [first, last], or None when every
        session closes at the next midnight UTC; `regular_close`: (local time, day offset) used
        for fallback sessions outside [first, last]."""
        self.code = code
        self.timezone = timezone
        self.first = first  # authoritative range: holidays are known inside it
        self.last = last
        sessions = np.ascontiguousarray(sessions, dtype=np.int32)
        sessions.setflags(write=False)
        self._sessions = sessions
        table = np.zeros(_SPAN_HI - _SPAN_LO + 1, dtype=bool)
        table[sessions - _SPAN_LO] = True
        table.setflags(write=False)
        self._is_session = table
        self._first_index = int(np.searchsorted(sessions, _day(first), "left"))
        if closes is not None:
            closes = np.ascontiguousarray(closes, dtype=np.int64)
            closes.setflags(write=False)
        self._closes = closes
        self._regular_close = regular_close

    def __repr__(self) -> str:
        return f"TradingCalendar({self.code!r}, authoritative {self.first}..{self.last})"

    # ------------------------------------------------------------------ vectorised

    def is_session(self, dates: pa.Array | pa.ChunkedArray) -> pa.BooleanArray:
        """Whether each date is a session (nulls stay null). One table look-up per row."""
        days, mask = _int_days(dates)
        idx = days.astype(np.int64) - _SPAN_LO
        inside = (idx >= 0) & (idx < self._is_session.size)
        if inside.all():
            out = self._is_session[idx]
        else:
            out = np.zeros(days.size, dtype=bool)
            out[inside] = self._is_session[idx[inside]]
        return pa.array(out, type=pa.bool_(), mask=mask)

    def sessions(self, start: date, end: date) -> pa.Array:
        """The sessions in [start, end] (date32, ascending; empty when start > end)."""
        return _to_date32(self._slice(_day(start), _day(end)))

    def session_count(self, start: date, end: date) -> int:
        """How many sessions lie in [start, end], without materialising them."""
        lo, hi = _day(start), _day(end)
        if lo > hi:
            return 0
        s = self._sessions
        return int(np.searchsorted(s, hi, "right") - np.searchsorted(s, lo, "left"))

    def gaps(
        self,
        dates: pa.Array | pa.ChunkedArray,
        start: date | None = None,
        end: date | None = None,
    ) -> pa.Array:
        """Sessions in [start or min(dates), end or max(dates)] with no row (date32, ascending).

        Holidays and half days are sessions or not by the calendar, so never gaps; rows on
        non-session days are ignored (they cannot fill a gap). Only the authoritative range is
        judged: outside it a missing weekday may be an unknown holiday.
        """
        days, mask = _int_days(dates)
        if mask is not None:
            days = days[~mask]
        if (start is None or end is None) and days.size == 0:
            return _to_date32(np.empty(0, dtype=np.int32))
        lo = _day(start) if start is not None else int(days.min())
        hi = _day(end) if end is not None else int(days.max())
        lo = max(lo, _day(self.first))
        hi = min(hi, _day(self.last))
        expected = self._slice(lo, hi)
        if expected.size == 0:
            return _to_date32(expected)
        present = np.zeros(hi - lo + 1, dtype=bool)
        present[days[(days >= lo) & (days <= hi)] - lo] = True
        return _to_date32(expected[~present[expected - lo]])

    # ------------------------------------------------------------------ scalar

    def session_close_utc(self, d: date) -> datetime:
        """When session `d` closes, as an aware UTC datetime (early closes honoured).

        Raises ValueError when `d` is not a session: an unscheduled session has no known close,
        and the caller decides what to assume.
        """
        day = _day(d)
        i = self._index_of(day, d)
        if self._closes is None:
            return datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)
        j = i - self._first_index
        if 0 <= j < self._closes.size and self.first <= d <= self.last:
            return datetime.fromtimestamp(int(self._closes[j]), UTC)
        assert self._regular_close is not None  # exchange calendars always have one
        local_time, offset = self._regular_close
        local = datetime.combine(_date(day + offset), local_time, tzinfo=ZoneInfo(self.timezone))
        return local.astimezone(UTC)

    def next_session(self, d: date) -> date:
        """The first session strictly after `d` (`d` need not be a session)."""
        return self._at(int(np.searchsorted(self._sessions, _day(d), "right")), d)

    def previous_session(self, d: date) -> date:
        """The last session strictly before `d` (`d` need not be a session)."""
        return self._at(int(np.searchsorted(self._sessions, _day(d), "left")) - 1, d)

    def session_offset(self, d: date, n: int) -> date:
        """The session `n` sessions after (n > 0) or before (n < 0) `d`.

        An incremental fetch starts at `session_offset(last_stored, -overlap)` so that it
        re-reads the stored tail. `d` need not be a session (a stored unscheduled Saturday):
        n = -1 is then the previous session and n = 1 the next. n = 0 returns `d` itself, which
        must be a session (ValueError otherwise: there is no "0th session" of a closed day).
        """
        day = _day(d)
        if n == 0:
            self._index_of(day, d)
            return d
        s = self._sessions
        if n < 0:
            return self._at(int(np.searchsorted(s, day, "left")) + n, d)
        return self._at(int(np.searchsorted(s, day, "right")) + n - 1, d)

    # ------------------------------------------------------------------ helpers

    def _slice(self, lo: int, hi: int) -> np.ndarray:
        s = self._sessions
        return s[np.searchsorted(s, lo, "left") : np.searchsorted(s, hi, "right")]

    def _index_of(self, day: int, d: date) -> int:
        i = int(np.searchsorted(self._sessions, day, "left"))
        if i >= self._sessions.size or self._sessions[i] != day:
            raise ValueError(f"{d} is not a {self.code} session")
        return i

    def _at(self, i: int, d: date) -> date:
        if not 0 <= i < self._sessions.size:
            span = f"{SPAN_START}..{SPAN_END}"
            raise ValueError(f"{self.code}: the session asked for from {d} is outside {span}")
        return _date(int(self._sessions[i]))


# --------------------------------------------------------------------------- builders

# Exceptional sessions exchange_calendars does not list: the exchange opened on a day that is
# otherwise closed. A row on such a day is a real session (validation keeps it); a row on any
# other closed day is quarantined as `not_a_session`. Values are the local closing time.
# NSE/BSE (XBOM): Union Budget Saturdays, and the one-hour Diwali Muhurat sessions (evening;
# the latest Muhurat close, 19:15 IST, is used for all of them, so a Muhurat bar is at worst held
# back as provisional a little longer, never stored early).
_MUHURAT_CLOSE = time(19, 15)
EXCEPTIONAL_SESSIONS: MappingProxyType[str, MappingProxyType[date, time]] = MappingProxyType(
    {
        "XBOM": MappingProxyType(
            {
                date(2015, 2, 28): time(15, 30),  # Union Budget, Saturday
                date(2020, 2, 1): time(15, 30),  # Union Budget, Saturday
                date(2025, 2, 1): time(15, 30),  # Union Budget, Saturday
                date(2024, 1, 20): time(15, 30),  # special live session (DR site), Saturday
                date(2015, 11, 11): _MUHURAT_CLOSE,  # Diwali Muhurat trading sessions
                date(2016, 10, 30): _MUHURAT_CLOSE,
                date(2017, 10, 19): _MUHURAT_CLOSE,
                date(2018, 11, 7): _MUHURAT_CLOSE,
                date(2019, 10, 27): _MUHURAT_CLOSE,
                date(2020, 11, 14): _MUHURAT_CLOSE,
                date(2021, 11, 4): _MUHURAT_CLOSE,
                date(2022, 10, 24): _MUHURAT_CLOSE,
                date(2023, 11, 12): _MUHURAT_CLOSE,
                date(2024, 11, 1): _MUHURAT_CLOSE,
                date(2025, 10, 21): _MUHURAT_CLOSE,
            }
        )
    }
)


def _with_exceptional(
    code: str, tz: str, auth: np.ndarray, closes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The authoritative sessions and their UTC closes, with the code's exceptional sessions
    (those exchange_calendars lacks) merged in, still sorted."""
    extra = {d: t for d, t in EXCEPTIONAL_SESSIONS.get(code, {}).items() if _day(d) not in auth}
    if not extra:
        return auth, closes
    days = np.array([_day(d) for d in extra], dtype=np.int32)
    stamps = np.array(
        [int(datetime.combine(d, t, tzinfo=ZoneInfo(tz)).timestamp()) for d, t in extra.items()],
        dtype=np.int64,
    )
    all_days = np.concatenate([auth.astype(np.int32), days])
    order = np.argsort(all_days, kind="stable")
    return all_days[order], np.concatenate([closes, stamps])[order]


def _synthetic(code: str) -> TradingCalendar:
    if code == ALWAYS:
        sessions = np.arange(_SPAN_LO, _SPAN_HI + 1, dtype=np.int32)
    else:
        sessions = _weekdays(_SPAN_LO, _SPAN_HI)
    return TradingCalendar(
        code,
        timezone="UTC",
        first=SPAN_START,
        last=SPAN_END,
        sessions=sessions,
        closes=None,
        regular_close=None,
    )


def _exchange(code: str) -> TradingCalendar:
    # The class registry, not xc.get_calendar: we need bound_min/bound_max before building, and
    # a private instance rather than one from exchange_calendars' own process-wide cache.
    from exchange_calendars.calendar_utils import _default_calendar_factories

    factory = _default_calendar_factories.get(code)
    if factory is None:
        raise ValueError(f"unknown calendar code {code!r}")
    lo, hi = factory.bound_min(), factory.bound_max()
    first = max(HOUSE_START, lo.date()) if lo is not None else HOUSE_START
    last = min(HOUSE_END, hi.date()) if hi is not None else HOUSE_END
    cal = factory(start=first.isoformat(), end=last.isoformat())
    auth = cal.sessions.values.astype("datetime64[D]").astype(np.int32)
    closes = cal.closes.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy()
    closes = closes.astype("datetime64[s]").astype(np.int64)
    auth, closes = _with_exceptional(code, str(cal.tz), auth, closes)
    sessions = np.concatenate(
        [
            _weekdays(_SPAN_LO, _day(first) - 1),
            auth,
            _weekdays(_day(last) + 1, _SPAN_HI),
        ]
    )
    regular_time = cal.close_times[-1][1]
    return TradingCalendar(
        code,
        timezone=str(cal.tz),
        first=first,
        last=last,
        sessions=sessions,
        closes=closes,
        regular_close=(regular_time, int(cal.close_offset)),
    )


@functools.cache
def get_calendar(code: str) -> TradingCalendar:
    """The calendar for a code (an exchange_calendars code, ALWAYS or WEEKDAYS), built once."""
    if code in (ALWAYS, WEEKDAYS):
        return _synthetic(code)
    return _exchange(code)


def calendar_for(symbol: str) -> TradingCalendar:
    """The calendar a symbol's sessions are judged on (XNYS fallback: see `exchange_match`)."""
    return get_calendar(exchange_for(symbol))
