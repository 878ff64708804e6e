"""The request budget's cheap path: today's bar from a quote, when a quote can be trusted.

Yahoo's v7 quote endpoint answers many symbols per request with the session's open, high, low,
last price, volume, previous close and market time; the chart endpoint answers one symbol per
request. For a symbol whose stored history ends the session before the quote's, with the
quote's previous close equal to the stored last close, the quote *is* the next daily bar
(adj_close = close: an adjustment only ever rescales earlier days). Everything else goes to
the chart endpoint: new symbols, gaps, a quote for the stored last day that differs from it
(the merge sees the difference and the ingest refetches), a previous close that disagrees
(a split, a restatement), incomplete quotes.

The trade-off (README "The request budget"; docs/data-quality.md): the chart's overlap re-reads
the last `BARLAKE_OVERLAP_SESSIONS` sessions and so notices restatements the day they happen;
the quote sees only the previous close. A split shows there (the previous close is restated)
and is caught; a dividend's adj_close rescale and a revised volume inside the overlap are not,
and wait for the rolling audit (#9), which re-reads whole histories within its period.

Pure: no clock, no network. The ingest supplies the quote and the stored bars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pyarrow as pa

from barlake.core.calendar import TradingCalendar
from barlake.core.schema import BAR_SCHEMA

# Quote and chart carry the same float32 prices; allow Yahoo's rounding of the previous close.
PREVIOUS_CLOSE_TOLERANCE = 5e-4


@dataclass(frozen=True)
class Quote:
    symbol: str
    market_time: datetime  # aware: Yahoo's regularMarketTime
    timezone: str  # exchangeTimezoneName
    open: float | None
    high: float | None
    low: float | None
    close: float | None  # regularMarketPrice
    volume: int | None
    previous_close: float | None
    market_state: str = ""

    @property
    def session(self) -> date:
        """The exchange-local date the quote belongs to."""
        return self.market_time.astimezone(ZoneInfo(self.timezone)).date()


@dataclass(frozen=True)
class QuoteDecision:
    bars: pa.Table | None  # the one bar the quote gives, or None: ask the chart
    reason: str  # why the chart is needed ("" when bars is set)


def _finite(*values: float | int | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in values)


def decide(quote: Quote, stored: pa.Table, calendar: TradingCalendar) -> QuoteDecision:
    """The bar `quote` gives for a symbol whose stored bars are `stored`, or why not."""
    if stored.num_rows == 0:
        return QuoteDecision(None, "new symbol")
    if not _finite(quote.open, quote.high, quote.low, quote.close, quote.volume):
        return QuoteDecision(None, "incomplete quote")
    try:
        day = quote.session
    except (KeyError, ValueError):
        return QuoteDecision(None, f"unknown timezone {quote.timezone!r}")
    last = stored.column("date")[-1].as_py()
    if day == last:
        return QuoteDecision(_bar(quote, day), "")  # the merge compares it with the stored day
    if day < last:
        return QuoteDecision(None, f"quote of {day} older than the stored tail {last}")
    if day != calendar.next_session(last):
        return QuoteDecision(None, f"gap: stored tail {last}, quote of {day}")
    last_close = stored.column("close")[-1].as_py()
    previous = quote.previous_close
    if not _finite(previous, last_close) or last_close <= 0:
        return QuoteDecision(None, "no previous close to compare")
    assert previous is not None
    if abs(previous - last_close) > PREVIOUS_CLOSE_TOLERANCE * last_close:
        return QuoteDecision(
            None, f"previous close {previous:g} ≠ stored {last_close:g} (split or restatement?)"
        )
    return QuoteDecision(_bar(quote, day), "")


def _bar(quote: Quote, day: date) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "symbol": quote.symbol,
                "date": day,
                "open": float(quote.open),  # type: ignore[arg-type]
                "high": float(quote.high),  # type: ignore[arg-type]
                "low": float(quote.low),  # type: ignore[arg-type]
                "close": float(quote.close),  # type: ignore[arg-type]
                "adj_close": float(quote.close),  # type: ignore[arg-type]
                "volume": int(quote.volume),  # type: ignore[arg-type]
            }
        ],
        schema=BAR_SCHEMA,
    )
