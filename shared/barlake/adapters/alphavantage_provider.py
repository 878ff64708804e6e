"""Alpha Vantage daily series (`GET /query?function=TIME_SERIES_DAILY[_ADJUSTED]`) as a Provider.

What it gives: `TIME_SERIES_DAILY_ADJUSTED` (premium keys; the `demo` key for IBM) has per day
the as-traded open/high/low/close/volume, an adjusted close (splits and dividends), the
dividend amount on the ex-date and the split coefficient; it maps onto the lake exactly as
Tiingo's rows do (provider_http.lake_tables: prices and volume split-adjusted, adj_close as
given, dividend and split actions). `TIME_SERIES_DAILY` (free keys) has only as-traded OHLCV:
no split or dividend is known, so close is stored as traded and adj_close = close. That is
right between corporate actions and wrong across a split, which the ingest's restatement check
then sees once the primary answers again: use it as a short-window fallback only.

Which function: `adjusted=True` (the default) asks TIME_SERIES_DAILY_ADJUSTED first; when the
key is refused it ("premium endpoint") the adapter switches to TIME_SERIES_DAILY for the rest of
its life. outputsize=compact (the latest 100 sessions) when `start` is within ~140 days,
otherwise full (premium on current free keys: refused with AUTH).

Errors come back as HTTP 200 with an error object instead of the series; they are matched on
the key, never parsed as bars: `Note` (the old per-minute limit) → RATE_LIMITED; `Information`
→ AUTH when it says premium, else RATE_LIMITED (25/day, 1/second); `Error Message` → AUTH when
it names the apikey, else NOT_FOUND ("Invalid API call": unknown symbol). A body without
"Time Series (Daily)" is TRANSIENT. Keys are echoed by some `Information` bodies: messages keep
only their first words up to the key.

as_of: Meta Data "3. Last Refreshed" carries a time of day while the session is open
("2020-05-08 14:07:57", US/Eastern): that time (to UTC) is as_of, so the partial bar is
provisional; a bare date means the session closed, and the fetch time is used.

Symbols: ^indices and =X currencies are not served. Exchange suffixes map to Alpha Vantage's
(.L → .LON, .TO → .TRT, .V → .TRV, .DE → .DEX, .BO → .BSE, .SS → .SHH, .SZ → .SHZ); others
(7203.T, 0700.HK…) are not served. Class shares keep Yahoo's "-" (BRK-B).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from barlake.adapters.provider_http import (
    DEFAULT_TIMEOUT,
    ProviderFailure,
    ProviderHttp,
    RawRow,
    cannot_serve,
    lake_tables,
    yahoo_suffix,
)
from barlake.ports import ErrorKind, FetchResult, Pacer, ProviderError

DEFAULT_URL = "https://www.alphavantage.co"
SERIES = "Time Series (Daily)"
COMPACT_DAYS = 140  # 100 sessions back, with room for holidays
SUFFIXES = {
    "L": "LON",
    "TO": "TRT",
    "V": "TRV",
    "DE": "DEX",
    "BO": "BSE",
    "SS": "SHH",
    "SZ": "SHZ",
}
_EASTERN = ZoneInfo("America/New_York")
_ECHOED_KEY = re.compile(r"(API key as )\S+")


def alphavantage_symbol(symbol: str) -> str | ProviderError:
    """Alpha Vantage's symbol for a Yahoo symbol, or why it cannot serve it."""
    if symbol.startswith("^"):
        return cannot_serve("alphavantage", symbol, "indices are not in its daily series")
    if "=" in symbol:
        return cannot_serve("alphavantage", symbol, "currencies use FX_DAILY, not served")
    root, suffix = yahoo_suffix(symbol)
    if not suffix:
        return symbol
    if suffix in SUFFIXES:
        return f"{root}.{SUFFIXES[suffix]}"
    return cannot_serve("alphavantage", symbol, f"no Alpha Vantage market for .{suffix}")


def _redact(text: str) -> str:
    """An error text without the key some bodies echo ("We have detected your API key as …")."""
    return _ECHOED_KEY.sub(r"\1…", text)


def classify_body(body: Any) -> ProviderError | None:
    """The error an Alpha Vantage 200 body stands for, or None when it holds a series."""
    if not isinstance(body, dict):
        return ProviderError(ErrorKind.TRANSIENT, "alphavantage: unexpected body, not an object")
    if "Note" in body:
        return ProviderError(ErrorKind.RATE_LIMITED, f"alphavantage: {_redact(str(body['Note']))}")
    if "Information" in body:
        text = _redact(str(body["Information"]))
        kind = ErrorKind.AUTH if "premium" in text.lower() else ErrorKind.RATE_LIMITED
        if "rate limit" in text.lower() or "sparingly" in text.lower():
            kind = ErrorKind.RATE_LIMITED
        return ProviderError(kind, f"alphavantage: {text}"[:240])
    if "Error Message" in body:
        text = _redact(str(body["Error Message"]))
        kind = ErrorKind.AUTH if "apikey" in text.lower() else ErrorKind.NOT_FOUND
        return ProviderError(kind, f"alphavantage: {text}"[:240])
    if not isinstance(body.get(SERIES), dict):
        return ProviderError(ErrorKind.TRANSIENT, f"alphavantage: no {SERIES!r} in the body")
    return None


def _num(day: Mapping[str, Any], suffix: str) -> float | None:
    for key, value in day.items():
        if key.split(". ", 1)[-1] == suffix:
            try:
                return float(value)
            except (TypeError, ValueError):
                return None
    return None


def alphavantage_rows(body: Mapping[str, Any]) -> list[RawRow]:
    """The series' days as RawRows (every value in the body is a string)."""
    rows = []
    for stamp, day in body[SERIES].items():
        close = _num(day, "close")
        adjusted = _num(day, "adjusted close")
        rows.append(
            RawRow(
                date.fromisoformat(stamp[:10]),
                _num(day, "open"),
                _num(day, "high"),
                _num(day, "low"),
                close,
                adjusted if adjusted is not None else close,
                _num(day, "volume"),
                dividend=_num(day, "dividend amount"),
                split=_num(day, "split coefficient"),
            )
        )
    return rows


def last_refreshed(body: Mapping[str, Any]) -> datetime | None:
    """Meta Data "3. Last Refreshed" as an aware UTC time when it carries a time of day."""
    meta = body.get("Meta Data") or {}
    stamp = str(meta.get("3. Last Refreshed", ""))
    if len(stamp) <= 10:
        return None
    try:
        local = datetime.fromisoformat(stamp).replace(tzinfo=_EASTERN)
    except ValueError:
        return None
    return local.astimezone(UTC)


class AlphaVantageProvider:
    """A Provider over Alpha Vantage's daily series; one request per symbol."""

    name = "alphavantage"

    def __init__(
        self,
        key: str,
        base_url: str = DEFAULT_URL,
        *,
        adjusted: bool = True,
        pacer: Pacer | None = None,
        clock: Callable[[], datetime] | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.key = key
        self.adjusted = adjusted
        self.http = ProviderHttp(
            "alphavantage", base_url or DEFAULT_URL, pacer=pacer, timeout=timeout
        )
        self.clock = clock or (lambda: datetime.now(UTC))

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        return {symbol: self._one(symbol, start, end) for symbol in symbols}

    def _ask(self, function: str, av_symbol: str, outputsize: str) -> Any:
        params = {
            "function": function,
            "symbol": av_symbol,
            "outputsize": outputsize,
            "datatype": "json",
            "apikey": self.key,
        }
        return self.http.get_json("/query", params)

    def _one(self, symbol: str, start: date | None, end: date | None) -> FetchResult:
        av_symbol = alphavantage_symbol(symbol)
        if isinstance(av_symbol, ProviderError):
            return FetchResult(symbol, error=av_symbol)
        if not self.key:
            return FetchResult(
                symbol, error=ProviderError(ErrorKind.AUTH, "BARLAKE_ALPHAVANTAGE_KEY is not set")
            )
        now = self.clock()
        recent = start is not None and start >= now.date() - timedelta(days=COMPACT_DAYS)
        outputsize = "compact" if recent else "full"
        try:
            function = "TIME_SERIES_DAILY_ADJUSTED" if self.adjusted else "TIME_SERIES_DAILY"
            body = self._ask(function, av_symbol, outputsize)
            error = classify_body(body)
            if (
                self.adjusted
                and error is not None
                and error.kind is ErrorKind.AUTH
                and "premium" in error.message.lower()
            ):
                self.adjusted = False  # this key has no adjusted series: stop asking
                body = self._ask("TIME_SERIES_DAILY", av_symbol, outputsize)
                error = classify_body(body)
        except ProviderFailure as failure:
            return FetchResult(symbol, error=failure.error)
        if error is not None:
            return FetchResult(symbol, error=error)
        try:
            bars, actions = lake_tables(symbol, alphavantage_rows(body), start, end)
        except (ValueError, TypeError) as exc:
            return FetchResult(
                symbol, error=ProviderError(ErrorKind.TRANSIENT, f"alphavantage: bad row: {exc}")
            )
        if bars.num_rows == 0:
            return FetchResult(
                symbol, error=ProviderError(ErrorKind.NO_DATA, "alphavantage: no bars in the range")
            )
        as_of = last_refreshed(body) or now
        return FetchResult(symbol, bars=bars, actions=actions, as_of=min(as_of, now))
