"""Polygon.io (Massive since 2025-10-30) daily aggregates as a Provider, with a grouped bulk path.

Per symbol, three requests (auth: `Authorization: Bearer <BARLAKE_POLYGON_KEY>`):
- `/v2/aggs/ticker/{T}/range/1/day/{from}/{today}?adjusted=true&sort=asc&limit=50000`: OHLCV
  split-adjusted by Polygon (what the lake stores as close); paged by `next_url`;
- `/v3/reference/splits?ticker=T&execution_date.gte={from}`: the split actions (announced splits
  dated after today are ignored);
- `/v3/reference/dividends?ticker=T&ex_dividend_date.gte={from}`: cash dividends (as declared;
  stored split-adjusted, as Yahoo reports them).
adj_close is not given by Polygon: it is built the way Yahoo builds it, each dividend scaling
every earlier close by (1 - dividend / close of the session before the ex-date). That needs
every dividend after a date, so the range always runs to today and is cut to `end` afterwards.

Bulk path: `/v2/aggs/grouped/locale/us/market/stocks/{date}` returns the whole US market for one
date in one request. When a fetch asks for more symbols than there are weekdays in
[start, today] (the daily update: a few overlap sessions for a whole universe), the adapter
asks one grouped request per weekday plus the market-wide splits and dividends since `start`,
instead of three requests per symbol. A symbol absent from every grouped day is NO_DATA.

Dates: `t` is epoch milliseconds at the session's start in New York for `/range` (04:00 or
05:00 UTC across DST) and 16:00 ET in other endpoints: the New York date of `t` is the session.
Volumes come as floats ("642646396.0") and are rounded.

as_of: the fetch time minus SETTLE (1 h): the free plan's data is end-of-day/15-min delayed, so
today's bar is provisional until an hour after the close.

Symbols: US listings only. Class shares use "." (BRK-B → BRK.B). Not served (NOT_FOUND without a
request): indices (^GSPC: the I:SPX indices need a paid plan), currencies (=X), exchange
suffixes (7203.T). Errors: 401 (unknown key) and 403 NOT_AUTHORIZED (plan window) → AUTH,
429 → RATE_LIMITED, a 200 with status ERROR → TRANSIENT; see provider_http for the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from barlake.adapters.provider_http import (
    DEFAULT_TIMEOUT,
    ProviderFailure,
    ProviderHttp,
    cannot_serve,
    yahoo_suffix,
)
from barlake.core.schema import ACTION_SCHEMA, BAR_SCHEMA
from barlake.ports import ErrorKind, FetchResult, Pacer, ProviderError

DEFAULT_URL = "https://api.polygon.io"
SETTLE = timedelta(hours=1)
FULL_HISTORY_START = date(1970, 1, 1)
MAX_PAGES = 50
_NEW_YORK = ZoneInfo("America/New_York")


def polygon_ticker(symbol: str) -> str | ProviderError:
    """Polygon's ticker for a Yahoo symbol, or why Polygon cannot serve it."""
    if symbol.startswith("^"):
        return cannot_serve("polygon", symbol, "indices (I:…) need a paid plan")
    if "=" in symbol:
        return cannot_serve("polygon", symbol, "currencies are not stock aggregates")
    if yahoo_suffix(symbol)[1]:
        return cannot_serve("polygon", symbol, "Polygon's stock data is US listings only")
    return symbol.replace("-", ".")


def session_date(t_ms: float) -> date:
    return datetime.fromtimestamp(t_ms / 1000, UTC).astimezone(_NEW_YORK).date()


def _describe(status: int, body: Any) -> str | None:
    if isinstance(body, dict):
        said = body.get("error") or body.get("message")
        return str(said) if said else None
    return str(body) if isinstance(body, str) else None


def _check_status(body: Any, where: str) -> None:
    if not isinstance(body, dict):
        raise ProviderFailure(ErrorKind.TRANSIENT, f"polygon {where}: unexpected body")
    status = str(body.get("status", "OK")).upper()
    if status == "NOT_AUTHORIZED":
        raise ProviderFailure(ErrorKind.AUTH, f"polygon {where}: {_describe(200, body)}")
    if status not in ("OK", "DELAYED"):
        raise ProviderFailure(
            ErrorKind.TRANSIENT, f"polygon {where}: status {status}: {_describe(200, body)}"
        )
    results = body.get("results", [])
    if not isinstance(results, list) or not all(isinstance(r, dict) for r in results):
        raise ProviderFailure(ErrorKind.TRANSIENT, f"polygon {where}: results is not a list")


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def adj_closes(closes: Sequence[float | None], dividends: Sequence[float]) -> list[float | None]:
    """Yahoo's adjusted close: each dividend d on session i scales the closes before i by
    (1 - d / close[i-1]). `dividends[i]` is the split-adjusted cash going ex on session i."""
    out: list[float | None] = [None] * len(closes)
    factor = 1.0
    for i in range(len(closes) - 1, -1, -1):
        close = closes[i]
        out[i] = close * factor if close is not None else None
        prev = closes[i - 1] if i > 0 else None
        if dividends[i] and prev:
            factor *= 1.0 - dividends[i] / prev
    return out


def polygon_tables(
    symbol: str,
    aggs: Sequence[Mapping[str, Any]],
    splits: Sequence[tuple[date, float]],
    dividends: Sequence[tuple[date, float]],
    start: date | None,
    end: date | None,
) -> tuple[pa.Table, pa.Table]:
    """(bars, actions) in the lake's schemas from split-adjusted aggregates and reference events
    (every event since the first aggregate, up to today)."""
    by_day = {session_date(float(r["t"])): r for r in aggs}
    days = sorted(by_day)

    def later_splits(day: date) -> float:
        f = 1.0
        for d, ratio in splits:
            if d > day:
                f *= ratio
        return f

    cash = {d: 0.0 for d in days}
    actions: list[dict[str, Any]] = []
    for d, amount in dividends:
        adjusted = amount / later_splits(d)
        if d in cash:
            cash[d] += adjusted
        actions.append({"symbol": symbol, "date": d, "kind": "dividend", "value": adjusted})
    actions += [{"symbol": symbol, "date": d, "kind": "split", "value": r} for d, r in splits]
    closes = [_num(by_day[d], "c") for d in days]
    adjusted_closes = adj_closes(closes, [cash[d] for d in days])
    bars = []
    for d, adj in zip(days, adjusted_closes, strict=True):
        if (start is not None and d < start) or (end is not None and d > end):
            continue
        row = by_day[d]
        volume = _num(row, "v")
        bars.append(
            {
                "symbol": symbol,
                "date": d,
                "open": _num(row, "o"),
                "high": _num(row, "h"),
                "low": _num(row, "l"),
                "close": _num(row, "c"),
                "adj_close": adj,
                "volume": round(volume) if volume is not None else None,
            }
        )
    keep = [
        a
        for a in actions
        if (start is None or a["date"] >= start) and (end is None or a["date"] <= end)
    ]
    keep.sort(key=lambda a: (a["date"], a["kind"]))
    return (
        pa.Table.from_pylist(bars, schema=BAR_SCHEMA),
        pa.Table.from_pylist(keep, schema=ACTION_SCHEMA),
    )


class PolygonProvider:
    """A Provider over Polygon/Massive aggregates (module docstring)."""

    name = "polygon"

    def __init__(
        self,
        key: str,
        base_url: str = DEFAULT_URL,
        *,
        pacer: Pacer | None = None,
        clock: Callable[[], datetime] | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        grouped: bool = True,
    ) -> None:
        self.key = key
        self.grouped = grouped
        self.http = ProviderHttp(
            "polygon",
            base_url or DEFAULT_URL,
            pacer=pacer,
            timeout=timeout,
            headers={"Authorization": f"Bearer {key}"},
        )
        self.clock = clock or (lambda: datetime.now(UTC))

    # ------------------------------------------------------------------ requests

    def _results(self, path: str, params: Mapping[str, str], where: str) -> list[dict]:
        """Every result of a listing, following next_url pages."""
        out: list[dict] = []
        url, query = path, dict(params)
        for _ in range(MAX_PAGES):
            body = self.http.get_json(url, query or None, describe=_describe)
            _check_status(body, where)
            out.extend(body.get("results") or [])
            url = body.get("next_url") or ""
            query = {}
            if not url:
                return out
        raise ProviderFailure(ErrorKind.TRANSIENT, f"polygon {where}: more than {MAX_PAGES} pages")

    def _events(
        self, ticker: str | None, since: date, today: date
    ) -> tuple[dict[str, list], dict[str, list]]:
        """(splits, dividends) by Polygon ticker since `since` (one ticker, or the market)."""
        who = {"ticker": ticker} if ticker else {}
        splits: dict[str, list] = {}
        for r in self._results(
            "/v3/reference/splits",
            {**who, "execution_date.gte": since.isoformat(), "limit": "1000"},
            "splits",
        ):
            day = date.fromisoformat(str(r["execution_date"]))
            ratio = (_num(r, "split_to") or 0) / (_num(r, "split_from") or 1)
            if day <= today and ratio > 0:
                splits.setdefault(str(r["ticker"]), []).append((day, ratio))
        dividends: dict[str, list] = {}
        for r in self._results(
            "/v3/reference/dividends",
            {**who, "ex_dividend_date.gte": since.isoformat(), "limit": "1000"},
            "dividends",
        ):
            day = date.fromisoformat(str(r["ex_dividend_date"]))
            amount = _num(r, "cash_amount")
            if day <= today and amount and r.get("dividend_type", "CD") == "CD":
                dividends.setdefault(str(r["ticker"]), []).append((day, amount))
        return splits, dividends

    # ------------------------------------------------------------------ fetch

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        now = self.clock()
        out: dict[str, FetchResult] = {}
        tickers: dict[str, str] = {}
        for symbol in symbols:
            ticker = polygon_ticker(symbol)
            if isinstance(ticker, ProviderError):
                out[symbol] = FetchResult(symbol, error=ticker)
            elif not self.key:
                out[symbol] = FetchResult(
                    symbol, error=ProviderError(ErrorKind.AUTH, "BARLAKE_POLYGON_KEY is not set")
                )
            else:
                tickers[symbol] = ticker
        if self.grouped and start is not None and tickers:
            days = _weekdays(start, now.date())
            if 0 < len(days) < len(tickers):
                out.update(self._grouped(tickers, days, start, end, now))
                return {s: out[s] for s in symbols}
        for symbol, ticker in tickers.items():
            out[symbol] = self._one(symbol, ticker, start, end, now)
        return {s: out[s] for s in symbols}

    def _one(
        self, symbol: str, ticker: str, start: date | None, end: date | None, now: datetime
    ) -> FetchResult:
        since = start or FULL_HISTORY_START
        today = now.date()
        try:
            aggs = self._results(
                f"/v2/aggs/ticker/{ticker}/range/1/day/{since.isoformat()}/{today.isoformat()}",
                {"adjusted": "true", "sort": "asc", "limit": "50000"},
                "aggregates",
            )
            if not aggs:
                return FetchResult(
                    symbol, error=ProviderError(ErrorKind.NO_DATA, "polygon: no aggregates")
                )
            splits, dividends = self._events(ticker, since, today)
        except ProviderFailure as failure:
            return FetchResult(symbol, error=failure.error)
        return self._result(
            symbol, aggs, splits.get(ticker, []), dividends.get(ticker, []), start, end, now
        )

    def _result(
        self,
        symbol: str,
        aggs: Sequence[Mapping[str, Any]],
        splits: Sequence[tuple[date, float]],
        dividends: Sequence[tuple[date, float]],
        start: date | None,
        end: date | None,
        now: datetime,
    ) -> FetchResult:
        try:
            bars, actions = polygon_tables(symbol, aggs, splits, dividends, start, end)
        except (KeyError, ValueError, TypeError) as exc:
            return FetchResult(
                symbol, error=ProviderError(ErrorKind.TRANSIENT, f"polygon: bad row: {exc}")
            )
        if bars.num_rows == 0:
            return FetchResult(
                symbol, error=ProviderError(ErrorKind.NO_DATA, "polygon: no bars in the range")
            )
        return FetchResult(symbol, bars=bars, actions=actions, as_of=now - SETTLE)

    def fetch_grouped(self, day: date) -> list[dict]:
        """The whole US market's bars for one date (one request), each with its ticker `T`."""
        return self._results(
            f"/v2/aggs/grouped/locale/us/market/stocks/{day.isoformat()}",
            {"adjusted": "true"},
            "grouped daily",
        )

    def _grouped(
        self,
        tickers: Mapping[str, str],
        days: Sequence[date],
        start: date,
        end: date | None,
        now: datetime,
    ) -> dict[str, FetchResult]:
        wanted = {t: s for s, t in tickers.items()}
        rows: dict[str, list[dict]] = {t: [] for t in wanted}
        try:
            for day in days:
                for r in self.fetch_grouped(day):
                    if r.get("T") in rows:
                        rows[str(r["T"])].append(r)
            splits, dividends = self._events(None, start, now.date())
        except ProviderFailure as failure:
            return {s: FetchResult(s, error=failure.error) for s in tickers}
        out: dict[str, FetchResult] = {}
        for ticker, symbol in wanted.items():
            if not rows[ticker]:
                out[symbol] = FetchResult(
                    symbol,
                    error=ProviderError(
                        ErrorKind.NO_DATA, f"polygon: not in grouped daily since {start}"
                    ),
                )
                continue
            out[symbol] = self._result(
                symbol,
                rows[ticker],
                splits.get(ticker, []),
                dividends.get(ticker, []),
                start,
                end,
                now,
            )
        return out


def _weekdays(start: date, today: date) -> list[date]:
    days, day = [], start
    while day <= today:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days
