"""A simulated Yahoo Finance for tests and benchmarks: the real yfinance code path, no network.

It answers what yfinance and the provider ask (the cookie and consent pages, the crumb, the v8
chart API, the v7 quote API) for any US-style symbol, from a deterministic synthetic market:
NYSE sessions from `history_start` to `today`, a random walk per symbol, and the splits and
dividends a test plants (Yahoo's way: prices before a split are divided by its ratio, adj_close
before an ex-date scaled by 1 - dividend / previous close). And it misbehaves like Yahoo:

- a rate limit: more than `limit` API requests within any `window_s` seconds are answered 429
  "Too Many Requests" (counted in `stats["rate_limited"]`);
- latency: every API answer takes `latency_s`;
- block mode (`blocked = True`): every chart request answers 404 "No data found, symbol may be
  delisted" and every quote an empty result — what Yahoo answers a blocked client (yfinance
  #2276, #2319); off again with `blocked = False`;
- delisted symbols (`delisted`): 404 for those only.

Two ways in: `SimTransport` mounts it on a requests Session in this process, and `SimServer`
serves it over HTTP on 127.0.0.1 (with `/_sim/...` control endpoints) for other processes: a
provider given `BARLAKE_PROVIDER=yahoo-sim:http://127.0.0.1:PORT` sends Yahoo's URLs there
(`forwarding_session`). Both drive the real yfinance library.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit
from zoneinfo import ZoneInfo

import numpy as np
import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict

from barlake.core.calendar import get_calendar

CRUMB = "sim-crumb"
NEW_YORK = ZoneInfo("America/New_York")
API_HOSTS = ("query1.finance.yahoo.com", "query2.finance.yahoo.com")
_DELISTED = {
    "chart": {
        "result": None,
        "error": {"code": "Not Found", "description": "No data found, symbol may be delisted"},
    }
}


def _seed(symbol: str) -> int:
    return int.from_bytes(hashlib.blake2b(symbol.encode(), digest_size=8).digest(), "big")


class SimulatedYahoo:
    def __init__(
        self,
        *,
        today: date,
        history_start: date = date(2024, 1, 2),
        limit: int | None = None,
        window_s: float = 60.0,
        latency_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.calendar = get_calendar("XNYS")
        self.today = today
        self.history_start = history_start
        self.limit, self.window_s, self.latency_s = limit, window_s, latency_s
        self.blocked = False
        self.delisted: set[str] = set()
        self.splits: dict[str, dict[date, float]] = {}
        self.dividends: dict[str, dict[date, float]] = {}
        self.stats: Counter[str] = Counter()
        self.arrivals: list[float] = []  # clock() of every API request, in order
        self._recent: deque[float] = deque()
        self._clock, self._sleep = clock, sleep
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ the market
    def sessions(self) -> list[date]:
        days = self.calendar.sessions(self.history_start, self.today).to_pylist()
        return [d for d in days if d <= self.today]

    def split(self, symbol: str, day: date, ratio: float) -> None:
        self.splits.setdefault(symbol.upper(), {})[day] = ratio
        _series.cache_clear()

    def dividend(self, symbol: str, day: date, amount: float) -> None:
        self.dividends.setdefault(symbol.upper(), {})[day] = amount
        _series.cache_clear()

    def bars(self, symbol: str) -> dict[str, Any]:
        """The symbol's whole history as Yahoo would serve it today (adjusted as Yahoo does)."""
        days = tuple(self.sessions())
        splits = tuple(sorted(self.splits.get(symbol, {}).items()))
        dividends = tuple(sorted(self.dividends.get(symbol, {}).items()))
        return _series(symbol, days, splits, dividends)

    def market_time(self) -> int:
        """regularMarketTime: a second after today's close (or the last session's)."""
        last = self.sessions()[-1]
        return int(self.calendar.session_close_utc(last).timestamp()) + 1

    # ------------------------------------------------------------------ HTTP
    def handle(self, url: str) -> tuple[int, Any]:
        """(status, body) for a GET of `url`; body is a str (text) or JSON-able."""
        parts = urlsplit(url)
        host, path = parts.hostname or "", parts.path
        params = dict(parse_qsl(parts.query))
        if host == "fc.yahoo.com":
            self._count("cookie")
            return 404, ""
        if host == "guce.yahoo.com":
            self._count("consent")
            return 200, "<html><body></body></html>"
        if not self._admit():
            return 429, "Edge: Too Many Requests"
        if self.latency_s:
            self._sleep(self.latency_s)
        if path == "/v1/test/getcrumb":
            self._count("crumb")
            return 200, CRUMB
        if path.startswith("/v8/finance/chart/"):
            self._count("chart")
            return self._chart(unquote(path.rsplit("/", 1)[1]).upper(), params)
        if path.startswith("/v7/finance/quote"):
            self._count("quote")
            symbols = [s.upper() for s in params.get("symbols", "").split(",") if s]
            return 200, {"quoteResponse": {"result": self._quotes(symbols), "error": None}}
        self._count("unexpected")
        return 404, {"error": f"simulated Yahoo has no {path}"}

    def _count(self, kind: str) -> None:
        with self._lock:
            self.stats[kind] += 1

    def _admit(self) -> bool:
        """Count an API request against the rate limit; False: answer 429."""
        with self._lock:
            now = self._clock()
            self.arrivals.append(now)
            self.stats["api"] += 1
            if self.limit is None:
                return True
            while self._recent and self._recent[0] <= now - self.window_s:
                self._recent.popleft()
            if len(self._recent) >= self.limit:
                self.stats["rate_limited"] += 1
                return False
            self._recent.append(now)
            return True

    def max_in_window(self, window_s: float | None = None) -> int:
        """The most API requests that arrived within any `window_s` (default: the limit's)."""
        w = self.window_s if window_s is None else window_s
        times = sorted(self.arrivals)
        best, lo = 0, 0
        for hi, t in enumerate(times):
            while times[lo] <= t - w:
                lo += 1
            best = max(best, hi - lo + 1)
        return best

    def _exists(self, symbol: str) -> bool:
        return not self.blocked and symbol not in self.delisted

    def _chart(self, symbol: str, params: dict[str, str]) -> tuple[int, Any]:
        if not self._exists(symbol):
            return 404, _DELISTED
        s = self.bars(symbol)
        stamps = s["timestamp"]
        if "period1" in params:
            lo, hi = int(params["period1"]), int(params.get("period2", 2**62))
            keep = [i for i, t in enumerate(stamps) if lo <= t < hi]
        elif params.get("range") == "max":
            keep = list(range(len(stamps)))
        else:  # range=1d (yfinance's timezone probe) and the like: the last bar
            self._count("tz_probe")
            keep = [len(stamps) - 1]
        meta = {
            "currency": "USD",
            "symbol": symbol,
            "exchangeName": "NYQ",
            "fullExchangeName": "NYSE",
            "instrumentType": "EQUITY",
            "firstTradeDate": stamps[0],
            "regularMarketTime": self.market_time(),
            "hasPrePostMarketData": False,
            "gmtoffset": -18000,
            "timezone": "EST",
            "exchangeTimezoneName": "America/New_York",
            "regularMarketPrice": s["close"][-1],
            "chartPreviousClose": s["close"][0],
            "priceHint": 2,
            "dataGranularity": "1d",
            "range": "",
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
        }
        result: dict[str, Any] = {"meta": meta}
        if keep:
            result["timestamp"] = [stamps[i] for i in keep]
            quote = {k: [s[k][i] for i in keep] for k in ("open", "high", "low", "close", "volume")}
            result["indicators"] = {
                "quote": [quote],
                "adjclose": [{"adjclose": [s["adjclose"][i] for i in keep]}],
            }
            kept = set(result["timestamp"])
            events: dict[str, Any] = {}
            for name, key in (("dividends", "dividends"), ("splits", "splits")):
                chosen = {str(t): e for t, e in s[key].items() if t in kept}
                if chosen:
                    events[name] = chosen
            if events:
                result["events"] = events
        else:
            result["indicators"] = {"quote": [{}], "adjclose": [{}]}
        return 200, {"chart": {"result": [result], "error": None}}

    def _quotes(self, symbols: Iterable[str]) -> list[dict[str, Any]]:
        out = []
        for symbol in symbols:
            if not self._exists(symbol):
                continue
            s = self.bars(symbol)
            out.append(
                {
                    "symbol": symbol,
                    "quoteType": "EQUITY",
                    "currency": "USD",
                    "marketState": "CLOSED",
                    "exchange": "NYQ",
                    "exchangeTimezoneName": "America/New_York",
                    "exchangeTimezoneShortName": "EST",
                    "gmtOffSetMilliseconds": -18000000,
                    "regularMarketTime": self.market_time(),
                    "regularMarketOpen": s["open"][-1],
                    "regularMarketDayHigh": s["high"][-1],
                    "regularMarketDayLow": s["low"][-1],
                    "regularMarketPrice": s["close"][-1],
                    "regularMarketVolume": s["volume"][-1],
                    "regularMarketPreviousClose": s["close"][-2] if len(s["close"]) > 1 else None,
                }
            )
        return out


@lru_cache(maxsize=4096)
def _series(
    symbol: str,
    days: tuple[date, ...],
    splits: tuple[tuple[date, float], ...],
    dividends: tuple[tuple[date, float], ...],
) -> dict[str, Any]:
    """A deterministic random walk for `symbol` over `days`, split- and dividend-adjusted."""
    # One generator per series, so a longer history (the next day) keeps every earlier value.
    seed = _seed(symbol)
    rng = [np.random.default_rng([seed, k]) for k in range(5)]
    n = len(days)
    base = 10.0 + (seed % 49000) / 100.0
    close = base * np.cumprod(1.0 + rng[0].normal(0.0, 0.015, n))
    open_ = close * (1.0 + rng[1].normal(0.0, 0.004, n))
    high = np.maximum(open_, close) * (1.0 + np.abs(rng[2].normal(0.0, 0.006, n)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng[3].normal(0.0, 0.006, n)))
    volume = rng[4].integers(100_000, 5_000_000, n)
    index = {d: i for i, d in enumerate(days)}
    for day, ratio in splits:  # prices before the split, as Yahoo shows them now
        if day in index:
            i = index[day]
            for a in (open_, high, low, close):
                a[:i] /= ratio
            volume[:i] = (volume[:i] * ratio).astype(np.int64)
    adj = close.copy()
    for day, amount in dividends:
        if day in index and index[day] > 0:
            i = index[day]
            adj[:i] *= 1.0 - amount / close[i - 1]
    f32 = lambda a: [float(np.float32(x)) for x in a]  # noqa: E731 - Yahoo's float32 values
    stamps = [
        int(datetime(d.year, d.month, d.day, 9, 30, tzinfo=NEW_YORK).timestamp()) for d in days
    ]
    return {
        "timestamp": stamps,
        "open": f32(open_),
        "high": f32(high),
        "low": f32(low),
        "close": f32(close),
        "adjclose": f32(adj),
        "volume": [int(v) for v in volume],
        "splits": {
            stamps[index[d]]: {
                "date": stamps[index[d]],
                "numerator": r,
                "denominator": 1,
                "splitRatio": f"{r:g}:1",
            }
            for d, r in splits
            if d in index
        },
        "dividends": {
            stamps[index[d]]: {"date": stamps[index[d]], "amount": a}
            for d, a in dividends
            if d in index
        },
    }


# --------------------------------------------------------------------------- transports


def _response(request: requests.PreparedRequest, status: int, body: Any) -> requests.Response:
    text = body if isinstance(body, str) else json.dumps(body)
    response = requests.Response()
    response.status_code = status
    response.reason = HTTPStatus(status).phrase
    response._content = text.encode()
    response.encoding = "utf-8"
    kind = "text/plain" if isinstance(body, str) else "application/json;charset=utf-8"
    response.headers = CaseInsensitiveDict({"content-type": kind})
    response.url = str(request.url)
    response.request = request
    return response


class SimTransport(BaseAdapter):
    """Mount a SimulatedYahoo on a requests Session (in this process)."""

    def __init__(self, sim: SimulatedYahoo) -> None:
        super().__init__()
        self.sim = sim

    def session(self) -> requests.Session:
        session = requests.Session()
        session.mount("https://", self)
        session.mount("http://", self)
        return session

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        status, body = self.sim.handle(str(request.url))
        return _response(request, status, body)

    def close(self) -> None:
        pass


class _Forward(HTTPAdapter):
    """Sends every request to the simulator's server, keeping the original URL in a header."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base.rstrip("/")

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        original = str(request.url)
        request.headers["X-Sim-Url"] = original
        request.url = self.base + "/_sim/get"
        response = super().send(request, **kwargs)
        response.url = original
        return response


def forwarding_session(base_url: str) -> requests.Session:
    """A requests Session whose every request goes to a SimServer at base_url."""
    session = requests.Session()
    adapter = _Forward(base_url)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


class SimServer:
    """A SimulatedYahoo over HTTP on 127.0.0.1, for other processes (the emulator stack).

    GET /_sim/get with X-Sim-Url: answer that URL. POST /_sim/block, /_sim/unblock, GET
    /_sim/stats (JSON counts and the most requests seen in one window)."""

    def __init__(self, sim: SimulatedYahoo) -> None:
        self.sim = sim
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _reply(self, status: int, body: Any) -> None:
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                kind = "text/plain" if isinstance(body, str) else "application/json"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/_sim/stats":
                    self._reply(200, server.stats())
                    return
                self._reply(*server.sim.handle(self.headers.get("X-Sim-Url", "")))

            def do_POST(self) -> None:
                if self.path in ("/_sim/block", "/_sim/unblock"):
                    server.sim.blocked = self.path == "/_sim/block"
                    self._reply(200, server.stats())
                    return
                self._reply(404, {"error": "unknown control"})

        from barlake.emulators import free_port

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def stats(self) -> dict[str, Any]:
        return {
            **self.sim.stats,
            "blocked": self.sim.blocked,
            "max_in_window": self.sim.max_in_window(),
        }

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def utc_close(sim: SimulatedYahoo) -> datetime:
    """Just after the simulated market's last close, in UTC (a clock for the ingest)."""
    return datetime.fromtimestamp(sim.market_time(), UTC) + timedelta(minutes=1)
