"""The one HTTP client the key-based providers (Tiingo, Alpha Vantage, Polygon) share.

Why one module: every such provider needs the same things done the same way, and getting them
wrong stores garbage, so they are written once:
- requests (already a dependency) with a connect and a read timeout on every request, a
  pooled session per provider instance, no retries of its own (retrying is the ingest's job,
  by error kind);
- pacing: `pacer.acquire(provider)` before each request. The default is `LocalPacer`, one token
  bucket per provider per process with the provider's documented free-tier limits (`FREE_LIMITS`);
  a shared pacer (Redis token bucket) is passed in where many instances share one key;
- classification of every failure into the port's ErrorKinds before any parsing: no route →
  UNREACHABLE; timeouts, other connection errors, 5xx → TRANSIENT; 429 → RATE_LIMITED;
  401/403 → AUTH; 404 → NOT_FOUND; an HTML page or a body that is not JSON (whatever the status:
  captive portals, proof-of-work and consent pages answer 200) → TRANSIENT. Bodies are parsed
  only after that, so an error page can never become bars. Provider-specific in-body errors
  (Alpha Vantage's 200 + `Note`) are classified by each adapter on top of this.

Keys never appear in messages: `ProviderFailure` messages carry the path, never the query.
"""

from __future__ import annotations

import errno
import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pyarrow as pa
import requests
from urllib3 import exceptions as urllib3_exc

from barlake.core.schema import ACTION_SCHEMA, BAR_SCHEMA
from barlake.ports import ErrorKind, Pacer, ProviderError, TransientError

DEFAULT_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
_MESSAGE_LIMIT = 240
_NO_ROUTE_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH}


@dataclass(frozen=True)
class Limit:
    """A token bucket: `burst` requests at once, refilled at `per_second`."""

    burst: int
    per_second: float


# Documented free-tier limits (README "Providers"; ../shared SOURCES.md): the strictest figure
# where sources disagree. Tiingo: 50 requests/hour (and 1,000/day). Alpha Vantage: 25/day.
# Polygon/Massive Basic: 5/minute.
FREE_LIMITS: dict[str, Limit] = {
    "tiingo": Limit(burst=50, per_second=50 / 3600),
    "alphavantage": Limit(burst=25, per_second=25 / 86400),
    "polygon": Limit(burst=5, per_second=5 / 60),
}


class LocalPacer:
    """An in-process Pacer: one token bucket per provider, shared by the threads of a process.

    Enough for one process with one key (the CLI, one ingest instance); deployments with many
    instances sharing a key pass a shared pacer instead. A wait longer than `patience` seconds
    raises TransientError at once (the batch is retried later) instead of sleeping it out.
    """

    def __init__(
        self,
        limits: Mapping[str, Limit] | None = None,
        *,
        patience: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._limits = dict(FREE_LIMITS if limits is None else limits)
        self._patience = patience
        self._clock, self._sleep = clock, sleep
        self._state: dict[str, tuple[float, float]] = {}  # provider → (tokens, at)
        self._lock = threading.Lock()

    def acquire(self, provider: str, cost: int = 1) -> float:
        limit = self._limits.get(provider)
        if limit is None:
            return 0.0
        with self._lock:
            now = self._clock()
            tokens, at = self._state.get(provider, (float(limit.burst), now))
            tokens = min(float(limit.burst), tokens + (now - at) * limit.per_second)
            wait = max(0.0, (cost - tokens) / limit.per_second) if limit.per_second else 0.0
            if wait > self._patience:
                raise TransientError(
                    f"{provider}: request budget spent ({limit.burst} at once, "
                    f"{limit.per_second * 3600:g}/hour); next request in {wait:.0f} s"
                )
            # Reserve now (tokens may go negative) so concurrent callers queue behind this one.
            self._state[provider] = (tokens - cost, now)
        if wait:
            self._sleep(wait)
        return wait


_DEFAULT_PACER: LocalPacer | None = None
_DEFAULT_LOCK = threading.Lock()


def default_pacer() -> LocalPacer:
    """The process's LocalPacer (one budget per provider however many adapters are built)."""
    global _DEFAULT_PACER
    with _DEFAULT_LOCK:
        if _DEFAULT_PACER is None:
            _DEFAULT_PACER = LocalPacer()
        return _DEFAULT_PACER


class ProviderFailure(Exception):
    """A classified failure of one request; `error` is what the symbol's FetchResult carries."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.error = ProviderError(kind, message[:_MESSAGE_LIMIT])


def _no_route(exc: BaseException) -> bool:
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        if isinstance(node, urllib3_exc.NameResolutionError):
            return True
        if isinstance(node, OSError) and node.errno in _NO_ROUTE_ERRNOS:
            return True
        if isinstance(node, urllib3_exc.MaxRetryError) and node.reason is not None:
            node = node.reason
            continue
        node = node.__cause__ or node.__context__ or (node.args[0] if node.args else None)
        if not isinstance(node, BaseException):
            break
    return False


def _snippet(text: str) -> str:
    return " ".join(text.split())[:120]


class ProviderHttp:
    """GET JSON from one provider: paced, timed out, classified (see the module docstring)."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        *,
        pacer: Pacer | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.pacer = pacer if pacer is not None else default_pacer()
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/json", **(headers or {})})
        self.requests = 0

    def get_json(
        self,
        path_or_url: str,
        params: Mapping[str, str] | None = None,
        *,
        status_kinds: Mapping[int, ErrorKind] | None = None,
        describe: Callable[[int, Any], str | None] | None = None,
    ) -> Any:
        """The parsed JSON body of a 2xx answer, or ProviderFailure.

        status_kinds overrides the default kind of a status; describe(status, body) turns an
        error body into the message (the provider's own words: "Unknown API Key")."""
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        where = url.split("?", 1)[0].removeprefix(self.base_url) or "/"
        try:
            self.pacer.acquire(self.provider)
        except TransientError as exc:
            raise ProviderFailure(ErrorKind.RATE_LIMITED, f"not sent: {exc}") from exc
        self.requests += 1
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.exceptions.Timeout as exc:
            raise ProviderFailure(ErrorKind.TRANSIENT, f"{where}: timed out ({exc})") from exc
        except requests.exceptions.ConnectionError as exc:
            kind = ErrorKind.UNREACHABLE if _no_route(exc) else ErrorKind.TRANSIENT
            raise ProviderFailure(kind, f"{where}: cannot connect to {self.base_url}") from exc
        except requests.exceptions.RequestException as exc:
            raise ProviderFailure(ErrorKind.TRANSIENT, f"{where}: {exc}") from exc
        text = response.text
        ctype = response.headers.get("Content-Type", "").lower()
        html = "html" in ctype or text.lstrip()[:15].lower().startswith(("<!doctype", "<html"))
        body: Any = None
        if not html:
            try:
                body = json.loads(text) if text.strip() else None
            except ValueError:
                body = None
        status = response.status_code
        said = describe(status, body) if describe is not None and body is not None else None
        detail = said or (f"an HTML page: {_snippet(text)}" if html else _snippet(text))
        if status >= 400:
            kinds = {
                401: ErrorKind.AUTH,
                403: ErrorKind.AUTH,
                404: ErrorKind.NOT_FOUND,
                429: ErrorKind.RATE_LIMITED,
                **(status_kinds or {}),
            }
            kind = kinds.get(status, ErrorKind.TRANSIENT)
            raise ProviderFailure(kind, f"{where}: HTTP {status}: {detail}")
        if html:
            raise ProviderFailure(ErrorKind.TRANSIENT, f"{where}: HTTP {status}, {detail}")
        if body is None:
            raise ProviderFailure(
                ErrorKind.TRANSIENT, f"{where}: HTTP {status}, not JSON: {detail or 'empty'}"
            )
        return body

    def close(self) -> None:
        self.session.close()


# --------------------------------------------------------------------------- shared by adapters


def cannot_serve(provider: str, symbol: str, why: str) -> ProviderError:
    """The answer for a symbol a provider has no data for by construction (an index, a foreign
    listing): NOT_FOUND without a request, so a chain can fall back at no cost."""
    return ProviderError(ErrorKind.NOT_FOUND, f"{provider} cannot serve {symbol}: {why}")


def yahoo_suffix(symbol: str) -> tuple[str, str]:
    """(root, exchange suffix) of a Yahoo symbol: 7203.T → ("7203", "T"); BRK-B → ("BRK-B", "")."""
    root, dot, suffix = symbol.rpartition(".")
    return (root, suffix) if dot and root else (symbol, "")


@dataclass(frozen=True)
class RawRow:
    """One session as traded (not adjusted), with the provider's own adjusted close and the
    session's events: what Tiingo and Alpha Vantage's adjusted series give."""

    date: date
    open: float | None
    high: float | None
    low: float | None
    close: float | None
    adj_close: float | None
    volume: float | None
    dividend: float | None = None  # cash per share, as declared, on the ex-date
    split: float | None = None  # new shares per old share on the split date (1.0: none)


def lake_tables(
    symbol: str, rows: Sequence[RawRow], start: date | None, end: date | None
) -> tuple[pa.Table, pa.Table]:
    """(bars, actions) as the lake stores them, from rows as traded.

    The lake stores what Yahoo gives: prices and volume split-adjusted, dividends split-adjusted,
    adj_close split- and dividend-adjusted. So each row is divided (volume multiplied) by F(d),
    the product of every split dated after d; `rows` must therefore run to today (a split after
    the last row would be missed), and rows outside [start, end] are dropped only afterwards.
    """
    ordered = sorted(rows, key=lambda r: r.date)
    factors: list[float] = []
    later = 1.0
    for row in reversed(ordered):
        factors.append(later)
        if row.split and row.split > 0:
            later *= row.split
    factors.reverse()
    bars: list[dict[str, Any]] = []
    actions: list[dict[str, Any]] = []
    for row, f in zip(ordered, factors, strict=True):
        if (start is not None and row.date < start) or (end is not None and row.date > end):
            continue
        prices = {k: (v / f if (v := getattr(row, k)) is not None else None) for k in _OHLC}
        bars.append(
            {
                "symbol": symbol,
                "date": row.date,
                **prices,
                "adj_close": row.adj_close,
                "volume": round(row.volume * f) if row.volume is not None else None,
            }
        )
        if row.dividend and row.dividend > 0:
            actions.append(
                {"symbol": symbol, "date": row.date, "kind": "dividend", "value": row.dividend / f}
            )
        if row.split and row.split > 0 and row.split != 1.0:
            actions.append(
                {"symbol": symbol, "date": row.date, "kind": "split", "value": row.split}
            )
    return (
        pa.Table.from_pylist(bars, schema=BAR_SCHEMA),
        pa.Table.from_pylist(actions, schema=ACTION_SCHEMA),
    )


_OHLC = ("open", "high", "low", "close")
