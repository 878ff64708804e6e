"""Tiingo end-of-day prices (`GET /tiingo/daily/<ticker>/prices`) as a Provider.

What Tiingo gives: per session the raw (as traded) open/high/low/close/volume, the CRSP-adjusted
adjOpen…adjClose/adjVolume (splits and dividends), `divCash` on the ex-date and `splitFactor` on
the split date (1.0 otherwise). Auth: `Authorization: Token <BARLAKE_TIINGO_TOKEN>`.

How it maps onto the lake's schema (the lake stores what Yahoo stores):
- close/open/high/low are split-adjusted: raw ÷ F(d), F(d) = the product of every splitFactor
  dated after d. That needs every split after d, so the request has no `endDate`: it runs to
  today and rows after `end` are dropped here. (A startDate is always sent: without one Tiingo
  answers only the latest row; full history asks from 1900-01-01.)
- volume is split-adjusted the same way (raw × F(d), rounded), as Yahoo's is;
- adj_close is Tiingo's adjClose (splits and dividends), unchanged;
- actions: a dividend of divCash ÷ F(d) on its ex-date (split-adjusted, as Yahoo reports them),
  a split of splitFactor on its date.
Dates: Tiingo writes `2015-01-02T00:00:00.000Z` (history) or `…+00:00` (latest): the date part
is the session date.

as_of is the fetch time minus SETTLE (4 h): Tiingo publishes most US prices at 17:30 ET and
"exchanges may send corrections until 8 PM", so a session's bar counts as final only once
20:00 ET has passed; earlier it is provisional and not stored.

Symbols: US (and a few Chinese) listings only. Yahoo's class shares use "-" as Tiingo does
(BRK-B). Not served, answered NOT_FOUND without a request: indices (^GSPC), currencies
(EURUSD=X) and any exchange suffix (7203.T, VOD.L); crypto (BTC-USD) is asked and Tiingo's own
404 answers it. Errors: 404 → NOT_FOUND; 401/403 or "Please supply a token" → AUTH; 429 or
"run over your … allocation" (also seen as a 200) → RATE_LIMITED; see provider_http for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa

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

DEFAULT_URL = "https://api.tiingo.com"
SETTLE = timedelta(hours=4)
FULL_HISTORY_START = "1900-01-01"


def tiingo_ticker(symbol: str) -> str | ProviderError:
    """Tiingo's ticker for a Yahoo symbol, or why Tiingo cannot serve it."""
    if symbol.startswith("^"):
        return cannot_serve("tiingo", symbol, "indices are not in Tiingo's end-of-day data")
    if "=" in symbol:
        return cannot_serve("tiingo", symbol, "currencies are not in Tiingo's end-of-day data")
    if yahoo_suffix(symbol)[1]:
        return cannot_serve("tiingo", symbol, "Tiingo's end-of-day data is US listings only")
    return symbol


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def tiingo_tables(
    symbol: str, rows: Sequence[Mapping[str, Any]], start: date | None, end: date | None
) -> tuple[pa.Table, pa.Table]:
    """(bars, actions) in the lake's schemas from Tiingo's daily rows (module docstring)."""
    return lake_tables(
        symbol,
        [
            RawRow(
                date.fromisoformat(str(r["date"])[:10]),
                *(_num(r, k) for k in ("open", "high", "low", "close", "adjClose", "volume")),
                dividend=_num(r, "divCash"),
                split=_num(r, "splitFactor"),
            )
            for r in rows
        ],
        start,
        end,
    )


def _detail_kind(detail: str) -> ErrorKind | None:
    text = detail.lower()
    if "allocation" in text or "rate limit" in text or "too many" in text:
        return ErrorKind.RATE_LIMITED
    if "token" in text or "not authorized" in text or "permission" in text:
        return ErrorKind.AUTH
    if "not found" in text:
        return ErrorKind.NOT_FOUND
    return None


def _describe(status: int, body: Any) -> str | None:
    return str(body["detail"]) if isinstance(body, dict) and "detail" in body else None


class TiingoProvider:
    """A Provider over Tiingo's end-of-day endpoint; one request per symbol."""

    name = "tiingo"

    def __init__(
        self,
        token: str,
        base_url: str = DEFAULT_URL,
        *,
        pacer: Pacer | None = None,
        clock: Callable[[], datetime] | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> None:
        self.token = token
        self.http = ProviderHttp(
            "tiingo",
            base_url or DEFAULT_URL,
            pacer=pacer,
            timeout=timeout,
            headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        )
        self.clock = clock or (lambda: datetime.now(UTC))

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        return {symbol: self._one(symbol, start, end) for symbol in symbols}

    def _one(self, symbol: str, start: date | None, end: date | None) -> FetchResult:
        ticker = tiingo_ticker(symbol)
        if isinstance(ticker, ProviderError):
            return FetchResult(symbol, error=ticker)
        if not self.token:
            return FetchResult(
                symbol, error=ProviderError(ErrorKind.AUTH, "BARLAKE_TIINGO_TOKEN is not set")
            )
        params = {
            "startDate": start.isoformat() if start else FULL_HISTORY_START,
            "format": "json",
            "resampleFreq": "daily",
        }
        try:
            body = self.http.get_json(f"/tiingo/daily/{ticker}/prices", params, describe=_describe)
        except ProviderFailure as failure:
            err = failure.error
            kind = _detail_kind(err.message) if err.kind is ErrorKind.TRANSIENT else None
            return FetchResult(symbol, error=ProviderError(kind, err.message) if kind else err)
        fetched = self.clock()
        if isinstance(body, dict) and "detail" in body:  # an error sent with a 200
            detail = str(body["detail"])
            kind = _detail_kind(detail) or ErrorKind.TRANSIENT
            return FetchResult(symbol, error=ProviderError(kind, f"tiingo: {detail}"[:240]))
        if not isinstance(body, list) or not all(isinstance(r, dict) and "date" in r for r in body):
            return FetchResult(
                symbol,
                error=ProviderError(ErrorKind.TRANSIENT, "tiingo: unexpected body, not price rows"),
            )
        try:
            bars, actions = tiingo_tables(symbol, body, start, end)
        except (ValueError, TypeError) as exc:
            return FetchResult(
                symbol, error=ProviderError(ErrorKind.TRANSIENT, f"tiingo: bad row: {exc}")
            )
        if bars.num_rows == 0:
            return FetchResult(
                symbol, error=ProviderError(ErrorKind.NO_DATA, "tiingo: no bars in the range")
            )
        return FetchResult(symbol, bars=bars, actions=actions, as_of=fetched - SETTLE)
