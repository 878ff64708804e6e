"""Offline Yahoo: a requests.Session whose transport answers like Yahoo from recorded chart JSON.

yfinance accepts a `requests.Session`, so mounting this adapter runs the real yfinance code path
(cookie, crumb, timezone probe, chart request, parsing) with no network. It answers:
- the cookie request (fc.yahoo.com: 404 with no body, as Yahoo does) and the consent page
  (guce.yahoo.com: an empty page without a consent form, Yahoo's answer outside the EU), which
  yfinance asks for after any 4xx;
- the crumb request `/v1/test/getcrumb`;
- `/v8/finance/chart/{symbol}` from what the test registered for that symbol: a recording (its
  status and body, a 200 body cut to period1 ≤ t < period2 like Yahoo; a `range=` request, which
  is yfinance's timezone probe, gets the last bar), a bare status code, or a raised error.
Anything else raises UnexpectedRequest and is listed in `unexpected`. Requests are counted per
path (`counts`), chart requests are logged in arrival order (`chart_log`), and the most chart
requests in flight at once is kept (`max_in_flight`), so tests can assert batching.
"""

from __future__ import annotations

import contextlib
import copy
import errno
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from urllib3.exceptions import MaxRetryError, NewConnectionError

CRUMB = "offline-crumb"


class UnexpectedRequest(RuntimeError):
    """A request the offline Yahoo has no answer for."""


def load_recording(path: Path) -> tuple[int, Any]:
    """(status, body) of a recorded exchange {"request", "response"} or of a bare Yahoo body."""
    doc = json.loads(Path(path).read_text())
    if "response" not in doc:
        return 200, doc
    resp = doc["response"]
    body = resp["bodyJson"] if "bodyJson" in resp else resp.get("body", "")
    if isinstance(body, str):
        with contextlib.suppress(json.JSONDecodeError):
            body = json.loads(body)
    return int(resp.get("status", 200)), body


def connection_refused(url: str) -> requests.ConnectionError:
    """What requests raises when nothing listens: the no-route case."""
    reason = NewConnectionError(None, "Failed to establish a new connection: Connection refused")  # type: ignore[arg-type]
    reason.__cause__ = ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")
    return requests.ConnectionError(MaxRetryError(None, url, reason))  # type: ignore[arg-type]


def _window(body: dict, params: dict[str, str]) -> dict:
    """The body cut to [period1, period2) (or to the last bar for `range=`), as Yahoo would."""
    body = copy.deepcopy(body)
    result = body["chart"]["result"][0]
    stamps = result.get("timestamp") or []
    if "period1" in params:
        lo, hi = int(params["period1"]), int(params.get("period2", 2**62))
    else:
        lo, hi = (stamps[-1], stamps[-1] + 1) if stamps else (0, 0)
    keep = [i for i, t in enumerate(stamps) if lo <= t < hi]
    indicators = result.get("indicators", {})
    if keep:
        result["timestamp"] = [stamps[i] for i in keep]
        for block in (*indicators.get("quote", []), *indicators.get("adjclose", [])):
            for key, values in block.items():
                block[key] = [values[i] for i in keep]
    else:  # Yahoo's empty answer: no timestamp key, empty quote blocks
        result.pop("timestamp", None)
        indicators["quote"], indicators["adjclose"] = [{}], [{}]
    for kind, events in (result.get("events") or {}).items():
        result["events"][kind] = {k: e for k, e in events.items() if lo <= e["date"] < hi}
    return body


class OfflineYahoo(BaseAdapter):
    def __init__(self, latency: float = 0.0) -> None:
        super().__init__()
        self.latency = latency  # seconds each chart answer takes (to observe concurrency)
        self.counts: Counter[str] = Counter()
        self.chart_log: list[tuple[str, dict[str, str]]] = []
        self.unexpected: list[str] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._routes: dict[str, tuple[int, Any] | Callable[[str], BaseException]] = {}
        self._lock = threading.Lock()

    def session(self) -> requests.Session:
        session = requests.Session()
        session.mount("https://", self)
        session.mount("http://", self)
        return session

    def record(self, symbol: str, path: Path) -> None:
        self._routes[symbol.upper()] = load_recording(path)

    def status(self, symbol: str, code: int, body: Any = None) -> None:
        self._routes[symbol.upper()] = (code, HTTPStatus(code).phrase if body is None else body)

    def fail(self, symbol: str, error: Callable[[str], BaseException] = connection_refused) -> None:
        self._routes[symbol.upper()] = error

    def chart_symbols(self) -> list[str]:
        return [symbol for symbol, _ in self.chart_log]

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:
        url = str(request.url)
        parts = urlsplit(url)
        with self._lock:
            self.counts[parts.path] += 1
        if parts.hostname == "fc.yahoo.com":
            return _response(request, 404, "")
        if parts.hostname == "guce.yahoo.com":
            return _response(request, 200, "<html><body></body></html>")
        if parts.path == "/v1/test/getcrumb":
            return _response(request, 200, CRUMB)
        if parts.path.startswith("/v8/finance/chart/"):
            return self._chart(request, unquote(parts.path.rsplit("/", 1)[1]).upper(), parts.query)
        with self._lock:
            self.unexpected.append(url)
        raise UnexpectedRequest(f"offline Yahoo has no answer for {request.method} {url}")

    def _chart(
        self, request: requests.PreparedRequest, symbol: str, query: str
    ) -> requests.Response:
        params = dict(parse_qsl(query))
        with self._lock:
            self.chart_log.append((symbol, params))
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
        try:
            time.sleep(self.latency)
            route = self._routes.get(symbol)
            if route is None:
                raise UnexpectedRequest(f"offline Yahoo: nothing registered for {symbol}")
            if callable(route):
                raise route(str(request.url))
            status, body = route
            if status == 200 and isinstance(body, dict) and (body.get("chart") or {}).get("result"):
                body = _window(body, params)
            return _response(request, status, body)
        finally:
            with self._lock:
                self._in_flight -= 1

    def close(self) -> None:
        pass


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
