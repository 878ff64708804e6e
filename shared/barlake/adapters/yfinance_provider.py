"""The live Yahoo provider, through the real yfinance library (1.7).

Why `Ticker.history` per symbol and not `yf.download`
    Yahoo's chart API has no multi-symbol endpoint: `yf.download([...])` is itself a thread pool
    over `Ticker.history`, one chart request per ticker. It is the wrong tool here because in
    1.7 it (a) catches every per-ticker exception and keeps only `repr(e)` in a per-call context
    that is never returned (the errors reach the `yfinance` logger, nothing else), and it sets
    the wrong config key (`network.hide_exceptions` instead of `debug.hide_exceptions`), so the
    exception objects we need for classifying are gone; (b) reindexes every ticker onto the union
    of all tickers' dates, inventing NaN rows for dates a ticker never had, so Yahoo's own NaN rows
    could no longer be told from padding. So a batch here is what a `yf.download` call is: up to
    `batch_size` symbols fetched concurrently with `Ticker.history`, each in its own try, so each
    symbol gets its own exception and its own frame. Batches run one after the other.

How a failure is classified
    By the exception yfinance raised (exceptions are not hidden: `debug.hide_exceptions = False`)
    and by the HTTP status Yahoo gave the symbol's last chart request. The status is needed
    because yfinance first asks for the ticker's timezone (`range=1d`) and turns any failure of
    that probe into `YFTzMissingError` ("possibly delisted"), whether Yahoo said 404 or 503; a
    5xx must not become a permanent NOT_FOUND. The provider wraps the session's `request` method
    (works for curl_cffi and requests sessions alike) to note each chart answer's status, and to
    cap every timeout at `timeout` (yfinance hard-codes 30 s for its cookie and crumb requests).
    Order: 429/YFRateLimitError → RATE_LIMITED; no route (DNS failure, connection refused, network
    unreachable) → UNREACHABLE; timeouts (connect or read) and other connection failures →
    TRANSIENT; then the
    status: 5xx → TRANSIENT, 404 → NOT_FOUND, 400 → NO_DATA, other 4xx → TRANSIENT; then the
    exception: YFTzMissingError → NOT_FOUND, YFPricesMissingError → NOT_FOUND when Yahoo's reason
    says delisted / not found, else NO_DATA (a 200 with no timestamps); anything else TRANSIENT
    (retrying is the safe default for what we do not understand).

Failing fast with no network (and backing off when rate limited)
    The first symbol of a fetch goes alone. If it got no answer at all (no route, or a connect
    timeout) or a 429, the failure is Yahoo's, not the symbol's: every other symbol gets the same
    error kind ("not attempted: …") without a request. The same holds after any batch in which
    every symbol failed that way. Without this, a host with no route pays the cookie, consent and
    chart timeouts once per symbol (serialised by yfinance's cookie lock), and a rate-limited IP
    keeps hammering Yahoo. A symbol's own 429 inside an otherwise good batch stops nothing.
    Worst case, a network that silently drops packets: the first symbol's cookie, consent and
    chart requests each wait `timeout`, so about 3 x timeout whatever the number of symbols;
    DNS failure or a refused connection answer in milliseconds.

as_of
    Yahoo's `regularMarketTime` from the chart meta of the symbol's own answer (yfinance keeps the
    meta of the history request, so it costs nothing), converted to UTC; the injected clock at
    the time of the answer when the meta has none. `regularMarketTime` is the time of the last
    trade Yahoo counted, so a bar is only called final once Yahoo has data past its session's
    close. Caveat: for a stock that stopped trading before the close, it stays before the close
    and that day's bar is treated as provisional until the next fetch.

Values
    Bars keep yfinance's float64 values (Yahoo's float32 widened) untouched: no rounding, no
    repair, no auto-adjust, NaN rows kept (`keepna=True`). Yahoo's JSON nulls, which yfinance turns
    into NaN, are stored as nulls as the replay adapter stores them, so both paths quarantine
    them the same way. yfinance turns a null volume into 0; that cannot be undone. For daily bars
    yfinance adds a NaN row with volume 0 for a dividend or split dated after the last bar; such
    event-only rows are not bars Yahoo sent, so they go to `actions` only.

Process-wide yfinance state (yfinance keeps one session, one config and one cache location per
process): every fetch re-asserts this provider's session, config and cache location, holds a
module lock so fetches in one process do not interleave, and clears the in-process response memo
(`YfData.cache_get`) before each batch and at the end: it would otherwise serve a past range from
an earlier fetch, and each entry holds a whole response body (up to 64 of them).
"""

from __future__ import annotations

import errno
import re
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
import pandas as pd
import pyarrow as pa
import yfinance as yf
import yfinance.cache as yf_cache
from requests import exceptions as requests_exc
from urllib3 import exceptions as urllib3_exc
from yfinance._http import new_session
from yfinance.data import YfData
from yfinance.exceptions import (
    YFDataException,
    YFInvalidPeriodError,
    YFPricesMissingError,
    YFRateLimitError,
    YFTzMissingError,
)

from barlake.adapters.memory_pacer import PacerPatienceExceeded
from barlake.core.quotes import Quote
from barlake.core.schema import ACTION_SCHEMA, BAR_SCHEMA
from barlake.ports import ErrorKind, FetchResult, Pacer, ProviderError

try:  # yfinance's default transport; absent when yfinance falls back to requests
    from curl_cffi.curl import CurlError
except ImportError:  # pragma: no cover
    CurlError = None  # type: ignore[assignment,misc]

DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "barlake-yfinance"
MAX_WORKERS = 8  # concurrent chart requests inside a batch (yf.download uses 2 x CPUs)
PACER_NAME = "yahoo"  # the budget every Yahoo request draws from (barlake.pacing.YAHOO)
QUOTE_URL = "https://query2.finance.yahoo.com/v7/finance/quote"
QUOTE_BATCH = 100  # symbols per quote request (URLs stay well under 2 KB)
_MESSAGE_LIMIT = 300
_CHART_PATH = "/v8/finance/chart/"
# curl's "couldn't resolve proxy", "couldn't resolve host", "couldn't connect"
_CURL_NO_ROUTE = {5, 6, 7}
_NO_ROUTE_ERRNOS = {errno.ECONNREFUSED, errno.ENETUNREACH, errno.EHOSTUNREACH}
_FETCH_LOCK = threading.Lock()
_QUERY = re.compile(r"\?[^\s'\")]*")


@dataclass(frozen=True)
class _Answer:
    """The last HTTP answer Yahoo gave to a symbol's chart request."""

    status: int
    description: str


@dataclass(frozen=True)
class _Outcome:
    result: FetchResult
    halts: bool  # Yahoo as a whole failed (no answer at all, or rate limiting), not the symbol


class _ChartWatch:
    """Notes each chart answer's HTTP status per symbol and caps every request's timeout.

    Installed by wrapping the session's `request` method: both curl_cffi's and requests'
    `get` go through it, and yfinance passes its own timeouts (30 s for cookie and crumb)
    that a caller could not lower otherwise.
    """

    def __init__(
        self, session: Any, timeout: float, pacer: Pacer | None = None, concurrency: int = 8
    ) -> None:
        self._timeout = timeout
        self._answers: dict[str, _Answer] = {}
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(concurrency)
        self.pacer = pacer
        self.deadline: float | None = None  # time.monotonic() after which nothing is sent
        self.requests = 0  # requests sent to Yahoo through this session
        self.paced_s = 0.0  # seconds spent waiting for the request budget
        original = session.request

        def request(*args: Any, **kwargs: Any) -> Any:
            given = kwargs.get("timeout")
            if given is None or (isinstance(given, int | float) and given > self._timeout):
                kwargs["timeout"] = self._timeout
            url = kwargs["url"] if "url" in kwargs else args[1]
            # Every request to Yahoo's API hosts (crumb, timezone probe, chart, quote) is one
            # request of the shared budget, and at most `concurrency` are in flight at once.
            # The cookie and consent pages (fc./guce.yahoo.com) are not API calls: not paced.
            with self._slots:
                if self.deadline is not None and time.monotonic() > self.deadline:
                    # the fetch's time budget is spent: nothing more is sent in this call
                    raise PacerPatienceExceeded("this fetch's time budget is spent")
                if self.pacer is not None and _is_api(url):
                    waited = self.pacer.acquire(PACER_NAME)
                    with self._lock:
                        self.paced_s += waited
                with self._lock:
                    self.requests += 1
                response = original(*args, **kwargs)
            self._note(url, response)
            return response

        session.request = request

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()

    def answer(self, symbol: str) -> _Answer | None:
        with self._lock:
            return self._answers.get(symbol.upper())

    def _note(self, url: str, response: Any) -> None:
        path = urlsplit(str(url)).path
        if _CHART_PATH not in path:
            return
        symbol = unquote(path.rsplit("/", 1)[-1]).upper()
        status = int(response.status_code)
        description = ""
        if status >= 400:  # error bodies are tiny; successful ones are left to yfinance
            try:
                error = (response.json().get("chart") or {}).get("error") or {}
                description = str(error.get("description") or "")
            except Exception:
                description = ""
        with self._lock:
            self._answers[symbol] = _Answer(status, description)


class YFinanceProvider:
    """Daily bars and corporate actions from Yahoo through yfinance (see the module docstring).

    session: a curl_cffi or requests Session (None: yfinance's default curl_cffi one). Its
    `request` method is wrapped to watch chart answers and cap timeouts, so give each provider
    its own. cache_dir: where yfinance keeps its SQLite caches (timezones, cookies); must be
    writable (in Cloud Functions only /tmp is). clock: the fallback `as_of` source. pacer: the
    request budget every API request draws from (barlake.pacing); concurrency: API requests in
    flight at once; seed_timezones: learn uncached timezones from one quote request per 100
    symbols instead of yfinance's one probe per symbol. fetch_budget_s: seconds one fetch may
    spend; past it no further request is sent and the symbols left fail as rate-limited "not
    attempted" (retried), so a batch waiting on a busy budget ends inside the function timeout.
    """

    name = "yahoo"

    def __init__(
        self,
        session: Any = None,
        *,
        batch_size: int = 50,
        cache_dir: str | Path | None = None,
        timeout: float = 10.0,
        clock: Callable[[], datetime] | None = None,
        pacer: Pacer | None = None,
        concurrency: int = MAX_WORKERS,
        seed_timezones: bool = False,
        fetch_budget_s: float | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        # Our own default session rather than yfinance's singleton one, so the chart watch can be
        # installed on it and another yfinance user in the process does not swap it under us.
        self._session = session if session is not None else new_session()
        self.batch_size = batch_size
        self.cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
        self.timeout = float(timeout)
        self._clock = clock or (lambda: datetime.now(UTC))
        self.concurrency = concurrency
        self.seed_timezones = seed_timezones
        self.fetch_budget_s = fetch_budget_s
        self._watch = _ChartWatch(self._session, self.timeout, pacer, concurrency)
        self._configure_yfinance()

    # ----------------------------------------------------------------------- public

    @property
    def session(self) -> Any:
        """The HTTP session used for Yahoo (e.g. to set proxies on it)."""
        return self._session

    def fetch(
        self, symbols: Sequence[str], start: date | None, end: date | None
    ) -> dict[str, FetchResult]:
        """Daily bars for [start, end] (inclusive; start None = full history, end None = now).

        Every symbol asked gets a FetchResult, with bars or with a classified ProviderError.
        """
        wanted = list(dict.fromkeys(symbols))
        if not wanted:
            return {}
        if start is not None and end is not None and start > end:
            empty = ProviderError(ErrorKind.NO_DATA, f"empty range: start {start} > end {end}")
            return {s: FetchResult(s, error=empty) for s in wanted}
        if self.fetch_budget_s is not None:
            self._watch.deadline = time.monotonic() + self.fetch_budget_s
        halted_early = self._seed_timezones(wanted)
        if halted_early is not None:  # the quote said Yahoo itself fails: as the probe would
            return {s: FetchResult(s, error=halted_early) for s in wanted}
        results: dict[str, FetchResult] = {}
        with _FETCH_LOCK:
            self._configure_yfinance()
            self._watch.reset()
            halted: ProviderError | None = None
            first = True
            try:
                for i in range(0, len(wanted), self.batch_size):
                    batch = wanted[i : i + self.batch_size]
                    if halted is not None:
                        results.update({s: FetchResult(s, error=halted) for s in batch})
                        continue
                    # Past ranges are memoised per process (a later fetch would see stale
                    # data) and each memo holds a whole response body: clear per batch.
                    YfData.cache_get.cache_clear()
                    outcomes = self._fetch_batch(batch, start, end, probe_first=first)
                    first = False
                    results.update({s: o.result for s, o in outcomes.items()})
                    halted = _halt(list(outcomes.values()))
            finally:
                YfData.cache_get.cache_clear()
        return {s: results[s] for s in wanted}

    def quotes(self, symbols: Sequence[str]) -> dict[str, Quote]:
        """Yahoo's v7 quotes for `symbols`, QUOTE_BATCH per request (the request budget's
        cheap path: barlake.core.quotes). A symbol Yahoo does not know is absent. Each quote's
        timezone seeds yfinance's timezone cache, so the chart requests that follow skip
        yfinance's per-symbol timezone probe (a cold instance would otherwise send two requests
        per symbol). Errors raise: the caller falls back to chart requests."""
        wanted = list(dict.fromkeys(symbols))
        found: dict[str, Quote] = {}
        with _FETCH_LOCK:
            self._configure_yfinance()
            data = YfData(session=self._session)
            tz_cache = yf_cache.get_tz_cache()
            for i in range(0, len(wanted), QUOTE_BATCH):
                chunk = wanted[i : i + QUOTE_BATCH]
                params = {"symbols": ",".join(chunk), "formatted": "false"}
                body = data.get_raw_json(QUOTE_URL, params=params, timeout=self.timeout)
                asked = {s.upper(): s for s in chunk}
                for item in (body.get("quoteResponse") or {}).get("result") or []:
                    quote = _quote(item)
                    if quote is None or quote.symbol.upper() not in asked:
                        continue
                    symbol = asked[quote.symbol.upper()]
                    found[symbol] = quote
                    if tz_cache.lookup(symbol) is None:
                        tz_cache.store(symbol, quote.timezone)
        return found

    # ----------------------------------------------------------------------- internals

    def _seed_timezones(self, symbols: list[str]) -> ProviderError | None:
        """Before chart requests: one quote request per 100 symbols whose timezone yfinance
        has not cached, instead of one timezone probe per symbol (a cold instance). Returns
        the error for every symbol when the quote shows Yahoo itself failing (no route, a
        429), else None; any other failure leaves the probes to yfinance."""
        if not self.seed_timezones:
            return None
        with _FETCH_LOCK:
            self._configure_yfinance()
            cache = yf_cache.get_tz_cache()
            cold = [s for s in symbols if cache.lookup(s) is None]
        if len(cold) < 2:  # one probe costs what one quote costs
            return None
        try:
            self.quotes(cold)
        except Exception as exc:
            error, halts = _classify(exc, None)
            return ProviderError(error.kind, f"not attempted: {error.message}") if halts else None
        return None

    def _configure_yfinance(self) -> None:
        """Point yfinance's process-wide state at this provider's settings."""
        yf.config.debug.hide_exceptions = False
        yf.config.network.retries = 0  # retries are the caller's, by ErrorKind
        _use_cache_dir(self.cache_dir)
        YfData(session=self._session)

    def _fetch_batch(
        self, batch: list[str], start: date | None, end: date | None, *, probe_first: bool
    ) -> dict[str, _Outcome]:
        outcomes: dict[str, _Outcome] = {}
        todo = list(batch)
        if probe_first:
            # Alone, so a dead network costs one symbol's timeouts, not one per symbol.
            symbol = todo.pop(0)
            outcomes[symbol] = self._fetch_one(symbol, start, end)
            if (halted := _halt([outcomes[symbol]])) is not None:
                outcomes.update({s: _Outcome(FetchResult(s, error=halted), True) for s in todo})
                return outcomes
        if todo:
            with ThreadPoolExecutor(max_workers=min(len(todo), self.concurrency)) as pool:
                for symbol, outcome in zip(
                    todo, pool.map(lambda s: self._fetch_one(s, start, end), todo), strict=True
                ):
                    outcomes[symbol] = outcome
        return outcomes

    def _fetch_one(self, symbol: str, start: date | None, end: date | None) -> _Outcome:
        kwargs: dict[str, Any] = {
            "interval": "1d",
            "actions": True,
            "auto_adjust": False,
            "back_adjust": False,
            "repair": False,
            "keepna": True,
            "prepost": False,
            "rounding": False,
            "timeout": self.timeout,
        }
        if start is None:
            kwargs["period"] = "max"  # with an end, yfinance goes back 99 years from it
        else:
            kwargs["start"] = start  # exchange-local midnight
        if end is not None:
            kwargs["end"] = end + timedelta(days=1)  # yfinance's end is exclusive
        try:
            ticker = yf.Ticker(symbol, session=self._session)
            frame = ticker.history(**kwargs)
            market_time = ticker.get_history_metadata().get("regularMarketTime")
            as_of = _utc(market_time) if market_time is not None else self._now()
            bars, actions = _to_tables(symbol, frame)
        except Exception as exc:  # one symbol's failure, whatever it is, is that symbol's
            error, halts = _classify(exc, self._watch.answer(symbol))
            return _Outcome(FetchResult(symbol, error=error), halts)
        if bars.num_rows == 0:
            error = ProviderError(ErrorKind.NO_DATA, "Yahoo returned no bars in the range asked")
            return _Outcome(FetchResult(symbol, actions=actions, as_of=as_of, error=error), False)
        return _Outcome(FetchResult(symbol, bars=bars, actions=actions, as_of=as_of), False)

    def _now(self) -> datetime:
        now = self._clock()
        return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


# --------------------------------------------------------------------------- helpers


def _use_cache_dir(path: Path) -> None:
    """Make yfinance's SQLite caches (timezones, cookies, ISINs) live in `path`.

    `yf.cache.set_cache_location` alone only works before the first cache use: the cache
    objects keep their open database (and peewee reconnects to it), so a later call is silently
    ignored. Dropping yfinance's cache singletons makes the next use open the new location.
    """
    if all(
        Path(m.get_location()) == path
        for m in (yf_cache._TzDBManager, yf_cache._CookieDBManager, yf_cache._ISINDBManager)
    ):
        return
    path.mkdir(parents=True, exist_ok=True)
    yf_cache.set_cache_location(str(path))
    for manager, attr in (
        (yf_cache._TzCacheManager, "_tz_cache"),
        (yf_cache._CookieCacheManager, "_Cookie_cache"),
        (yf_cache._ISINCacheManager, "_isin_cache"),
    ):
        if hasattr(manager, attr):
            setattr(manager, attr, None)


def _halt(outcomes: list[_Outcome]) -> ProviderError | None:
    """The error for every later symbol when all of these say Yahoo itself failed, else None."""
    if not outcomes or not all(o.halts for o in outcomes):
        return None
    cause = outcomes[0].result.error
    assert cause is not None
    return ProviderError(cause.kind, _one_line(f"not attempted: {cause.message}"))


def _classify(exc: BaseException, answer: _Answer | None) -> tuple[ProviderError, bool]:
    """(error, halts) for a failed symbol; see the module docstring for the order."""
    detail = _one_line(f"{type(exc).__name__}: {exc}")

    def error(kind: ErrorKind, message: str, halts: bool = False) -> tuple[ProviderError, bool]:
        return ProviderError(kind, _one_line(message)), halts

    refused = _pacing_refusal(exc)
    if refused is not None:  # our own budget said no: nothing was sent, stop the batch
        return error(ErrorKind.RATE_LIMITED, f"request budget: {refused}", halts=True)
    if isinstance(exc, YFRateLimitError) or (answer is not None and answer.status == 429):
        return error(ErrorKind.RATE_LIMITED, "rate limited by Yahoo (HTTP 429)", halts=True)
    network = _network_failure(exc)
    if network == "no_route":
        return error(ErrorKind.UNREACHABLE, f"Yahoo unreachable: {detail}", halts=True)
    if network == "connect_timeout":
        return error(ErrorKind.TRANSIENT, f"connecting to Yahoo timed out: {detail}", True)
    if network is not None:
        return error(ErrorKind.TRANSIENT, f"network error: {detail}")
    if answer is not None and answer.status >= 400:
        said = f"Yahoo HTTP {answer.status}: {answer.description or 'no reason given'}"
        if answer.status == 404:
            return error(ErrorKind.NOT_FOUND, f"unknown or delisted symbol ({said})")
        if answer.status == 400:
            return error(ErrorKind.NO_DATA, f"no data in the range asked ({said})")
        return error(ErrorKind.TRANSIENT, said)
    if isinstance(exc, YFTzMissingError):
        return error(ErrorKind.NOT_FOUND, f"unknown or delisted symbol ({detail})")
    if isinstance(exc, YFPricesMissingError):
        reason = (exc.yahoo_reason or "").lower()
        if "delisted" in reason or "not found" in reason or "no data found" in reason:
            return error(ErrorKind.NOT_FOUND, f"unknown or delisted symbol ({detail})")
        return error(ErrorKind.NO_DATA, f"no data in the range asked ({detail})")
    if isinstance(exc, YFInvalidPeriodError):
        return error(ErrorKind.NO_DATA, detail)
    if isinstance(exc, YFDataException | ValueError):
        return error(ErrorKind.TRANSIENT, f"unusable answer from Yahoo: {detail}")
    return error(ErrorKind.TRANSIENT, f"unexpected error: {detail}")


def _quote(item: Mapping[str, Any]) -> Quote | None:
    """One v7 quote result, or None when it lacks what a bar needs to be judged."""

    def number(key: str) -> float | None:
        value = item.get(key)
        return float(value) if isinstance(value, int | float) else None

    stamp, tz, symbol = (
        item.get("regularMarketTime"),
        item.get("exchangeTimezoneName"),
        item.get("symbol"),
    )
    if not isinstance(stamp, int | float) or not isinstance(tz, str) or not isinstance(symbol, str):
        return None
    volume = item.get("regularMarketVolume")
    return Quote(
        symbol=symbol,
        market_time=datetime.fromtimestamp(stamp, UTC),
        timezone=tz,
        open=number("regularMarketOpen"),
        high=number("regularMarketDayHigh"),
        low=number("regularMarketDayLow"),
        close=number("regularMarketPrice"),
        volume=int(volume) if isinstance(volume, int | float) else None,
        previous_close=number("regularMarketPreviousClose"),
        market_state=str(item.get("marketState") or ""),
    )


def _is_api(url: Any) -> bool:
    host = urlsplit(str(url)).hostname or ""
    return host.startswith("query") and host.endswith(".finance.yahoo.com")


def _pacing_refusal(exc: BaseException) -> PacerPatienceExceeded | None:
    """The pacer's refusal (patience exceeded), wherever yfinance wrapped it."""
    seen: set[int] = set()
    stack: list[Any] = [exc]
    while stack:
        e = stack.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, PacerPatienceExceeded):
            return e
        stack.extend([e.__cause__, e.__context__, *e.args])
    return None


def _network_failure(exc: BaseException) -> str | None:
    """'no_route', 'connect_timeout', 'timeout', 'connection' or None, from the exception chain.

    Looks through causes, arguments and urllib3's `reason`, since requests wraps urllib3's
    errors two levels deep and curl_cffi reports curl's error code. Not through `__context__`:
    an error yfinance handled before raising another must not colour the one raised.
    """
    found: set[str] = set()
    stack: list[Any] = [exc]
    seen: set[int] = set()
    while stack:
        e = stack.pop()
        if not isinstance(e, BaseException) or id(e) in seen:
            continue
        seen.add(id(e))
        code = getattr(e, "code", None) if _is_curl_error(e) else None
        text = str(e).lower()
        if (
            # NewConnectionError covers urllib3's NameResolutionError too
            isinstance(e, socket.gaierror | ConnectionRefusedError | urllib3_exc.NewConnectionError)
            or code in _CURL_NO_ROUTE
            or (isinstance(e, OSError) and e.errno in _NO_ROUTE_ERRNOS)
        ):
            found.add("no_route")
        elif isinstance(e, requests_exc.ConnectTimeout | urllib3_exc.ConnectTimeoutError) or (
            code == 28 and ("connection timed out" in text or "resolving timed out" in text)
        ):
            found.add("connect_timeout")
        elif isinstance(e, requests_exc.Timeout | urllib3_exc.TimeoutError | TimeoutError) or (
            code == 28
        ):
            found.add("timeout")
        elif isinstance(e, requests_exc.ConnectionError | ConnectionError) or (
            code is not None and code != 0
        ):
            found.add("connection")
        stack.extend([e.__cause__, getattr(e, "reason", None), *e.args])
    for kind in ("no_route", "connect_timeout", "timeout", "connection"):
        if kind in found:
            return kind
    return None


def _is_curl_error(e: BaseException) -> bool:
    return CurlError is not None and isinstance(e, CurlError)


def _to_tables(symbol: str, frame: pd.DataFrame) -> tuple[pa.Table, pa.Table]:
    """yfinance's daily frame (index = exchange-local midnight) as BAR and ACTION tables."""
    if frame is None or frame.empty:
        return BAR_SCHEMA.empty_table(), ACTION_SCHEMA.empty_table()
    frame = frame.sort_index()
    days = np.array(frame.index.date, dtype=object)  # the exchange-local date
    price_names = ["Open", "High", "Low", "Close", "Adj Close"]
    prices = frame[price_names].to_numpy(dtype=np.float64)
    volume = frame["Volume"].to_numpy(dtype=np.int64)
    dividends = _column(frame, "Dividends")
    splits = _column(frame, "Stock Splits")
    event_only = np.isnan(prices).all(axis=1) & (volume == 0) & ((dividends != 0) | (splits != 0))
    keep = ~event_only
    n = int(keep.sum())
    bars = pa.Table.from_arrays(
        [
            pa.array([symbol] * n, pa.string()),
            pa.array(days[keep], pa.date32()),
            *(pa.array(prices[keep, j], pa.float64(), from_pandas=True) for j in range(5)),
            pa.array(volume[keep], pa.int64()),
        ],
        schema=BAR_SCHEMA,
    )
    rows: list[tuple[date, str, float]] = []
    for kind, values in (("dividend", dividends), ("split", splits)):
        mask = (values != 0) & ~np.isnan(values)
        rows.extend((d, kind, float(v)) for d, v in zip(days[mask], values[mask], strict=True))
    rows.sort(key=lambda r: (r[0], r[1]))
    actions = pa.Table.from_arrays(
        [
            pa.array([symbol] * len(rows), pa.string()),
            pa.array([r[0] for r in rows], pa.date32()),
            pa.array([r[1] for r in rows], pa.string()),
            pa.array([r[2] for r in rows], pa.float64()),
        ],
        schema=ACTION_SCHEMA,
    )
    return bars, actions


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    if name not in frame.columns:
        return np.zeros(len(frame), dtype=np.float64)
    return frame[name].to_numpy(dtype=np.float64, na_value=0.0)


def _utc(stamp: Any) -> datetime:
    value = pd.Timestamp(stamp, unit="s", tz="UTC") if isinstance(stamp, int | float) else stamp
    value = pd.Timestamp(value)
    value = value.tz_localize("UTC") if value.tzinfo is None else value.tz_convert("UTC")
    return value.to_pydatetime().astimezone(UTC)


def _one_line(text: str) -> str:
    """One line, without URL query strings (they carry yfinance's crumb), at most ~300 chars."""
    line = " ".join(_QUERY.sub("", text).split())
    return line if len(line) <= _MESSAGE_LIMIT else line[: _MESSAGE_LIMIT - 1] + "…"
