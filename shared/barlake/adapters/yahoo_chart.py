"""Parse Yahoo's v8 chart JSON (bare body or a recorded HTTP exchange) into bars and actions.

Used by the replay provider; the live path goes through yfinance, which parses the same JSON.
A bar's date is the exchange-local calendar date of its timestamp (meta.exchangeTimezoneName):
Yahoo stamps daily bars at the session open (13:30Z for New York) and the in-progress bar at
regularMarketTime, and both map to the right local day that way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa

from barlake.core.schema import ACTION_SCHEMA, BAR_SCHEMA, empty_actions, empty_bars
from barlake.ports import ErrorKind, ProviderError


@dataclass(frozen=True)
class ChartRecording:
    symbol: str
    bars: pa.Table
    actions: pa.Table
    as_of: datetime | None
    error: ProviderError | None = None


def _body(doc: dict[str, Any]) -> tuple[int, Any]:
    """(HTTP status, Yahoo body) from a recorded exchange or a bare body."""
    if "response" in doc:
        resp = doc["response"]
        body = resp.get("bodyJson")
        if body is None and "body" in resp:
            raw = resp["body"]
            try:
                body = json.loads(raw) if isinstance(raw, str) else raw
            except json.JSONDecodeError:
                body = {"raw": raw}
        return int(resp.get("status", 200)), body
    return 200, doc


def _error_from(status: int, body: Any) -> ProviderError | None:
    chart = body.get("chart", {}) if isinstance(body, dict) else {}
    err = chart.get("error") if isinstance(chart, dict) else None
    if err is None and isinstance(body, dict) and "code" in body:
        err = body
    description = (err or {}).get("description", "") if isinstance(err, dict) else str(err or "")
    if status == 404 or "delisted" in description.lower():
        return ProviderError(ErrorKind.NOT_FOUND, description or "symbol not found")
    if status == 429:
        return ProviderError(ErrorKind.RATE_LIMITED, "rate limited (HTTP 429)")
    if status >= 500:
        return ProviderError(ErrorKind.TRANSIENT, f"HTTP {status}")
    if status == 400 or err:
        return ProviderError(ErrorKind.NO_DATA, description or f"HTTP {status}")
    return None


def parse_chart(doc: dict[str, Any], symbol_hint: str | None = None) -> ChartRecording:
    status, body = _body(doc)
    error = _error_from(status, body)
    result = None
    if error is None:
        results = (body.get("chart") or {}).get("result") or []
        result = results[0] if results else None
    meta = (result or {}).get("meta", {})
    symbol = str(meta.get("symbol") or symbol_hint or "").upper()
    if error is not None or result is None:
        return ChartRecording(
            symbol,
            empty_bars(),
            empty_actions(),
            None,
            error or ProviderError(ErrorKind.NO_DATA, "empty chart result"),
        )
    timestamps = result.get("timestamp") or []
    if not timestamps:
        return ChartRecording(
            symbol,
            empty_bars(),
            empty_actions(),
            None,
            ProviderError(ErrorKind.NO_DATA, "no bars in the requested range"),
        )
    tz = ZoneInfo(meta.get("exchangeTimezoneName") or "UTC")
    dates = [datetime.fromtimestamp(t, tz).date() for t in timestamps]
    quote = (result.get("indicators", {}).get("quote") or [{}])[0]
    adj = (result.get("indicators", {}).get("adjclose") or [{}])[0].get("adjclose")
    n = len(timestamps)

    def col(values: list | None) -> list:
        return list(values) if values is not None else [None] * n

    bars = pa.Table.from_pydict(
        {
            "symbol": [symbol] * n,
            "date": dates,
            "open": col(quote.get("open")),
            "high": col(quote.get("high")),
            "low": col(quote.get("low")),
            "close": col(quote.get("close")),
            "adj_close": col(adj if adj is not None else quote.get("close")),
            "volume": col(quote.get("volume")),
        },
        schema=BAR_SCHEMA,
    )
    events = result.get("events") or {}
    rows: list[tuple[date, str, float]] = []
    for ev in (events.get("dividends") or {}).values():
        rows.append(
            (datetime.fromtimestamp(ev["date"], tz).date(), "dividend", float(ev["amount"]))
        )
    for ev in (events.get("splits") or {}).values():
        ratio = float(ev["numerator"]) / float(ev["denominator"])
        rows.append((datetime.fromtimestamp(ev["date"], tz).date(), "split", ratio))
    rows.sort()
    actions = pa.Table.from_pydict(
        {
            "symbol": [symbol] * len(rows),
            "date": [r[0] for r in rows],
            "kind": [r[1] for r in rows],
            "value": [r[2] for r in rows],
        },
        schema=ACTION_SCHEMA,
    )
    market_time = meta.get("regularMarketTime")
    as_of = datetime.fromtimestamp(market_time, UTC) if market_time else None
    return ChartRecording(symbol, bars, actions, as_of)


def load_chart(path: Path) -> ChartRecording:
    return parse_chart(json.loads(path.read_text()), symbol_hint=path.stem)
