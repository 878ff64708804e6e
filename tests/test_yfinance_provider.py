"""YFinanceProvider through the real yfinance code path, answered offline from recorded charts.

Expected values are read from the recorded JSON here, never from the code under test.
"""

from __future__ import annotations

import itertools
import json
import socket
import sqlite3
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import yfinance as yf

from barlake.adapters.yfinance_provider import DEFAULT_CACHE_DIR, YFinanceProvider
from barlake.core.schema import ACTION_SCHEMA, BAR_SCHEMA
from barlake.ports import ErrorKind, FetchResult, Provider
from conftest import FIXTURES
from yahoo_offline import OfflineYahoo, load_recording

# yfinance 1.7 calls pandas APIs that pandas 3.1 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword")

AAPL = FIXTURES / "chart_api" / "chart-AAPL-2020-08-31-to-2020-11-07.json"
NVDA = FIXTURES / "chart_api" / "historical-via-chart-NVDA-split-2021-02-01-to-2022-01-31.csv.json"
MSFT = (
    FIXTURES / "chart_api" / "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json"
)
WSU = FIXTURES / "chart_api" / "chart-WSU.DE-2023-08-04-to-2023-08-09.json"
ERRORS = FIXTURES / "chart_api_errors"
SIX = ERRORS / "historical-via-chart-SIX-2020-01-01-to-2020-01-03.json"
BFLY = ERRORS / "chart-BFLY-2020-01-01-to-2020-01-03.json"
APS = ERRORS / "chart-APS.AX-2020-01-01-to-2020-01-03.json"
GOOG = FIXTURES / "restatements" / "GOOG_split_20for1_2022"
GOOG_2021 = GOOG / "recorded-2021-11-21" / "chart-GOOG-2020-01-01-to-2020-01-03.json"
GOOG_2025 = GOOG / "recorded-2025-02-20" / "chart-GOOG-2020-01-01-to-2020-01-03.json"
NEW_YORK = ZoneInfo("America/New_York")


def chart(path: Path) -> dict[str, Any]:
    """result[0] of a recorded 200 chart answer."""
    return load_recording(path)[1]["chart"]["result"][0]


def recorded_rows(path: Path) -> list[dict[str, Any]]:
    """The recording's bars as BAR_SCHEMA rows: exchange-local dates, values as in the JSON."""
    result = chart(path)
    tz = ZoneInfo(result["meta"]["exchangeTimezoneName"])
    quote = result["indicators"]["quote"][0]
    adj = result["indicators"]["adjclose"][0]["adjclose"]
    return [
        {
            "symbol": result["meta"]["symbol"],
            "date": datetime.fromtimestamp(t, tz).date(),
            "open": quote["open"][i],
            "high": quote["high"][i],
            "low": quote["low"][i],
            "close": quote["close"][i],
            "adj_close": adj[i],
            "volume": quote["volume"][i],
        }
        for i, t in enumerate(result["timestamp"])
    ]


def market_time(path: Path) -> datetime:
    return datetime.fromtimestamp(chart(path)["meta"]["regularMarketTime"], UTC)


@pytest.fixture
def yahoo() -> OfflineYahoo:
    return OfflineYahoo()


@pytest.fixture
def provider(yahoo: OfflineYahoo, tmp_path: Path) -> YFinanceProvider:
    return YFinanceProvider(yahoo.session(), cache_dir=tmp_path / "yf-cache")


def ok(result: FetchResult) -> FetchResult:
    assert result.error is None, result.error
    assert result.bars is not None and result.actions is not None
    assert result.bars.schema == BAR_SCHEMA and result.actions.schema == ACTION_SCHEMA
    return result


# --------------------------------------------------------------------------- bars and actions


def test_aapl_2020_bars_actions_and_as_of(yahoo: OfflineYahoo, provider: YFinanceProvider) -> None:
    yahoo.record("AAPL", AAPL)
    result = ok(provider.fetch(["AAPL"], date(2020, 8, 31), date(2020, 11, 6))["AAPL"])

    assert isinstance(provider, Provider) and provider.name == "yahoo"
    expected = recorded_rows(AAPL)
    assert len(expected) == 49 and result.bars.num_rows == 49
    assert result.bars.to_pylist() == expected  # every value exactly as in the JSON
    first = result.bars.slice(0, 1).to_pylist()[0]
    assert first["date"] == date(2020, 8, 31)
    assert (first["open"], first["close"], first["volume"]) == (
        127.58000183105469,
        129.0399932861328,
        225702700,
    )
    events = chart(AAPL)["events"]
    (split,) = events["splits"].values()
    (dividend,) = events["dividends"].values()
    assert result.actions.to_pylist() == [
        {"symbol": "AAPL", "date": date(2020, 8, 31), "kind": "split",
         "value": split["numerator"] / split["denominator"]},
        {"symbol": "AAPL", "date": date(2020, 11, 6), "kind": "dividend",
         "value": dividend["amount"]},
    ]  # fmt: skip
    assert result.actions.column("value").to_pylist() == [4.0, 0.205]
    assert result.as_of == market_time(AAPL) == datetime(2025, 2, 19, 21, 0, 1, tzinfo=UTC)
    assert yahoo.unexpected == []  # cookie, crumb and chart were all yfinance asked for


def test_nvda_split_year(yahoo: OfflineYahoo, provider: YFinanceProvider) -> None:
    yahoo.record("NVDA", NVDA)
    result = ok(provider.fetch(["NVDA"], date(2021, 2, 1), date(2022, 1, 31))["NVDA"])
    assert result.bars.num_rows == 252
    assert result.bars.to_pylist() == recorded_rows(NVDA)
    assert result.actions.to_pylist() == [
        {"symbol": "NVDA", "date": date(2021, 7, 20), "kind": "split", "value": 4.0}
    ]


def test_msft_dividends(yahoo: OfflineYahoo, provider: YFinanceProvider) -> None:
    yahoo.record("MSFT", MSFT)
    result = ok(provider.fetch(["MSFT"], date(2021, 2, 1), date(2022, 1, 31))["MSFT"])
    tz = ZoneInfo(chart(MSFT)["meta"]["exchangeTimezoneName"])
    recorded = sorted(
        (datetime.fromtimestamp(e["date"], tz).date(), e["amount"])
        for e in chart(MSFT)["events"]["dividends"].values()
    )
    assert [(r["date"], r["value"]) for r in result.actions.to_pylist()] == recorded
    assert [v for _, v in recorded] == [0.56, 0.56, 0.56, 0.62]


def test_wsu_de_dates_are_berlin_local_dates(
    yahoo: OfflineYahoo, provider: YFinanceProvider
) -> None:
    yahoo.record("WSU.DE", WSU)
    result = ok(provider.fetch(["WSU.DE"], date(2023, 8, 4), date(2023, 8, 8))["WSU.DE"])
    assert chart(WSU)["meta"]["exchangeTimezoneName"] == "Europe/Berlin"
    assert result.bars.to_pylist() == recorded_rows(WSU)
    assert result.bars.column("date").to_pylist() == [
        date(2023, 8, 4),
        date(2023, 8, 7),
        date(2023, 8, 8),
    ]
    assert result.actions.num_rows == 0


def test_end_is_inclusive_and_start_is_local_midnight(
    yahoo: OfflineYahoo, provider: YFinanceProvider
) -> None:
    yahoo.record("AAPL", AAPL)
    result = ok(provider.fetch(["AAPL"], date(2020, 9, 1), date(2020, 9, 3))["AAPL"])
    assert result.bars.column("date").to_pylist() == [
        date(2020, 9, 1),
        date(2020, 9, 2),
        date(2020, 9, 3),
    ]
    (history,) = [p for s, p in yahoo.chart_log if "period1" in p]
    assert int(history["period1"]) == datetime(2020, 9, 1, tzinfo=NEW_YORK).timestamp()
    assert int(history["period2"]) == datetime(2020, 9, 4, tzinfo=NEW_YORK).timestamp()


def test_no_start_asks_for_the_full_history(
    yahoo: OfflineYahoo, provider: YFinanceProvider
) -> None:
    yahoo.record("AAPL", AAPL)
    result = ok(provider.fetch(["AAPL"], None, date(2020, 11, 6))["AAPL"])
    assert result.bars.num_rows == 49
    (history,) = [p for s, p in yahoo.chart_log if "period1" in p]
    assert int(history["period1"]) < datetime(1925, 1, 1, tzinfo=UTC).timestamp()


def test_null_bars_are_kept_and_as_of_falls_back_to_the_clock(
    yahoo: OfflineYahoo, tmp_path: Path
) -> None:
    _, body = load_recording(AAPL)
    result = body["chart"]["result"][0]
    for key in ("open", "high", "low", "close"):
        result["indicators"]["quote"][0][key][5] = None  # how Yahoo sends a missing bar
    result["indicators"]["adjclose"][0]["adjclose"][5] = None
    del result["meta"]["regularMarketTime"]
    edited = tmp_path / "aapl-with-null.json"
    edited.write_text(json.dumps(body))
    yahoo.record("AAPL", edited)
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    provider = YFinanceProvider(yahoo.session(), cache_dir=tmp_path / "yf", clock=lambda: now)

    got = ok(provider.fetch(["AAPL"], date(2020, 8, 31), date(2020, 11, 6))["AAPL"])
    assert got.bars.num_rows == 49
    row = got.bars.slice(5, 1).to_pylist()[0]
    assert row["date"] == datetime.fromtimestamp(result["timestamp"][5], NEW_YORK).date()
    assert [row[k] for k in ("open", "high", "low", "close", "adj_close")] == [None] * 5
    assert got.as_of == now


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("warm_tz_cache", [False, True], ids=["cold", "warm-tz-cache"])
@pytest.mark.parametrize(
    ("symbol", "path", "timezone", "kind"),
    [
        ("SIX", SIX, "America/New_York", ErrorKind.NOT_FOUND),
        ("BFLY", BFLY, "America/New_York", ErrorKind.NO_DATA),
        ("APS.AX", APS, "Australia/Sydney", ErrorKind.NO_DATA),
    ],
)
def test_recorded_errors_are_classified(
    yahoo: OfflineYahoo,
    provider: YFinanceProvider,
    symbol: str,
    path: Path,
    timezone: str,
    kind: ErrorKind,
    warm_tz_cache: bool,
) -> None:
    """Cold: yfinance's timezone probe meets the error first. Warm (timezone cached from an
    earlier run, the usual case): the history request itself gets the recorded answer."""
    yahoo.record(symbol, path)
    if warm_tz_cache:
        provider.fetch([], None, None)  # nothing fetched; the cache location is set
        yf.cache.get_tz_cache().store(symbol, timezone)
    result = provider.fetch([symbol], date(2020, 1, 1), date(2020, 1, 2))[symbol]
    assert result.bars is None and result.error is not None
    assert result.error.kind == kind
    assert result.error.message and "\n" not in result.error.message
    assert "crumb" not in result.error.message
    assert yahoo.chart_symbols() and set(yahoo.chart_symbols()) == {symbol}


def test_recorded_error_texts_reach_the_message(
    yahoo: OfflineYahoo, provider: YFinanceProvider
) -> None:
    yahoo.record("SIX", SIX)
    yahoo.record("BFLY", BFLY)
    got = provider.fetch(["SIX", "BFLY"], date(2020, 1, 1), date(2020, 1, 2))
    assert "No data found, symbol may be delisted" in got["SIX"].error.message
    assert "Data doesn't exist for startDate" in got["BFLY"].error.message


@pytest.mark.parametrize(
    ("code", "body", "kind"),
    [
        (429, None, ErrorKind.RATE_LIMITED),
        (500, None, ErrorKind.TRANSIENT),
        # A JSON error body makes yfinance say "possibly delisted"; the 503 must win.
        (503, {"chart": {"result": None, "error": {"code": "x", "description": "down"}}},
         ErrorKind.TRANSIENT),
    ],
)  # fmt: skip
def test_http_status_errors(
    yahoo: OfflineYahoo, provider: YFinanceProvider, code: int, body: Any, kind: ErrorKind
) -> None:
    yahoo.status("AAPL", code, body)
    result = provider.fetch(["AAPL"], date(2020, 8, 31), date(2020, 11, 6))["AAPL"]
    assert result.error is not None and result.error.kind == kind
    assert result.error.retryable


def test_connection_error_is_unreachable_and_stops_the_fetch(
    yahoo: OfflineYahoo, provider: YFinanceProvider
) -> None:
    yahoo.fail("AAPL")
    yahoo.record("MSFT", MSFT)
    got = provider.fetch(["AAPL", "MSFT", "NVDA"], date(2021, 2, 1), date(2022, 1, 31))
    assert list(got) == ["AAPL", "MSFT", "NVDA"]
    assert {r.error.kind for r in got.values()} == {ErrorKind.UNREACHABLE}
    assert "not attempted" in got["MSFT"].error.message
    assert set(yahoo.chart_symbols()) == {"AAPL"}  # nobody else was tried


def test_rate_limit_on_the_first_symbol_stops_the_fetch(
    yahoo: OfflineYahoo, provider: YFinanceProvider
) -> None:
    yahoo.status("AAPL", 429)
    yahoo.record("MSFT", MSFT)
    got = provider.fetch(["AAPL", "MSFT"], date(2021, 2, 1), date(2022, 1, 31))
    assert {r.error.kind for r in got.values()} == {ErrorKind.RATE_LIMITED}
    assert "not attempted" in got["MSFT"].error.message
    assert "MSFT" not in yahoo.chart_symbols()


def test_mixed_batch_keeps_the_good_symbols(
    yahoo: OfflineYahoo, provider: YFinanceProvider
) -> None:
    yahoo.record("AAPL", AAPL)
    yahoo.record("SIX", SIX)
    yahoo.record("BFLY", BFLY)
    yahoo.status("HOT", 429)
    yahoo.fail("DOWN")
    yahoo.fail("SLOW", lambda url: requests.exceptions.ReadTimeout(f"read timed out: {url}"))
    yahoo.record("WSU.DE", WSU)
    symbols = ["AAPL", "SIX", "BFLY", "HOT", "DOWN", "SLOW", "WSU.DE"]
    got = provider.fetch(symbols, date(2020, 8, 31), date(2020, 11, 6))
    assert list(got) == symbols
    assert ok(got["AAPL"]).bars.to_pylist() == recorded_rows(AAPL)
    kinds = {s: r.error.kind for s, r in got.items() if r.error is not None}
    assert kinds == {
        "SIX": ErrorKind.NOT_FOUND,
        "BFLY": ErrorKind.NO_DATA,
        "HOT": ErrorKind.RATE_LIMITED,
        "DOWN": ErrorKind.UNREACHABLE,
        "SLOW": ErrorKind.TRANSIENT,
        "WSU.DE": ErrorKind.NO_DATA,  # its recording has no bar in 2020
    }


def test_edge_inputs(yahoo: OfflineYahoo, provider: YFinanceProvider) -> None:
    assert provider.fetch([], None, None) == {}
    got = provider.fetch(["AAPL"], date(2020, 9, 2), date(2020, 9, 1))
    assert got["AAPL"].error.kind == ErrorKind.NO_DATA
    yahoo.record("AAPL", AAPL)
    got = provider.fetch(["AAPL", "AAPL"], date(2020, 9, 1), date(2020, 9, 1))
    assert list(got) == ["AAPL"] and ok(got["AAPL"]).bars.num_rows == 1
    with pytest.raises(ValueError):
        YFinanceProvider(yahoo.session(), batch_size=0)


# --------------------------------------------------------------------------- batching, state


def test_batches_run_one_after_the_other(yahoo: OfflineYahoo, tmp_path: Path) -> None:
    symbols = ["A1", "A2", "B1", "B2", "C1"]
    for s in symbols:
        yahoo.record(s, GOOG_2021)
    provider = YFinanceProvider(yahoo.session(), batch_size=2, cache_dir=tmp_path / "yf")
    got = provider.fetch(symbols, date(2020, 1, 2), date(2020, 1, 2))
    assert all(ok(r).bars.num_rows == 1 for r in got.values())
    order = yahoo.chart_symbols()
    # per symbol: yfinance's timezone probe, then the history request
    assert sorted(order) == sorted(symbols * 2)
    assert all(yahoo.counts[f"/v8/finance/chart/{s}"] == 2 for s in symbols)
    batches = [{"A1", "A2"}, {"B1", "B2"}, {"C1"}]
    spans = [[i for i, s in enumerate(order) if s in batch] for batch in batches]
    assert len(spans) == 3
    for earlier, later in itertools.pairwise(spans):
        assert max(earlier) < min(later)


def test_symbols_in_a_batch_are_fetched_concurrently(tmp_path: Path) -> None:
    yahoo = OfflineYahoo(latency=0.2)
    symbols = [f"S{i}" for i in range(7)]
    for s in symbols:
        yahoo.record(s, GOOG_2021)
    provider = YFinanceProvider(yahoo.session(), batch_size=4, cache_dir=tmp_path / "yf")
    got = provider.fetch(symbols, date(2020, 1, 2), date(2020, 1, 2))
    assert all(r.error is None for r in got.values())
    assert 2 <= yahoo.max_in_flight <= 4


def test_second_fetch_sees_the_restated_data(
    yahoo: OfflineYahoo, provider: YFinanceProvider
) -> None:
    before = recorded_rows(GOOG_2021)
    after = recorded_rows(GOOG_2025)
    assert before[0]["close"] == 1367.3699951171875 and after[0]["close"] == 68.36849975585938

    yahoo.record("GOOG", GOOG_2021)
    first = ok(provider.fetch(["GOOG"], date(2020, 1, 2), date(2020, 1, 2))["GOOG"])
    assert first.bars.to_pylist() == before
    assert first.as_of == market_time(GOOG_2021)

    yahoo.record("GOOG", GOOG_2025)  # Yahoo now answers with the split-adjusted bar
    second = ok(provider.fetch(["GOOG"], date(2020, 1, 2), date(2020, 1, 2))["GOOG"])
    assert second.bars.to_pylist() == after
    assert second.bars.column("volume").to_pylist() == [28132000]
    assert second.as_of == market_time(GOOG_2025)


def test_cache_dir_is_the_one_given_even_after_another(yahoo: OfflineYahoo, tmp_path: Path) -> None:
    yahoo.record("AAPL", AAPL)
    yahoo.record("WSU.DE", WSU)
    one, two = tmp_path / "one", tmp_path / "two"
    YFinanceProvider(yahoo.session(), cache_dir=one).fetch(
        ["AAPL"], date(2020, 8, 31), date(2020, 11, 6)
    )
    # a second cache dir in the same process: yfinance alone would keep writing to `one`
    YFinanceProvider(yahoo.session(), cache_dir=two).fetch(
        ["WSU.DE"], date(2023, 8, 4), date(2023, 8, 8)
    )

    def zones(folder: Path) -> dict[str, str]:
        with sqlite3.connect(folder / "tkr-tz.db") as db:
            return dict(db.execute("select key, value from _tz_kv").fetchall())

    assert zones(one) == {"AAPL": "America/New_York"}
    assert zones(two) == {"WSU.DE": "Europe/Berlin"}
    assert yf.config.debug.hide_exceptions is False


def test_default_cache_dir_is_under_the_temp_dir() -> None:
    provider = YFinanceProvider(requests.Session())
    assert provider.cache_dir == DEFAULT_CACHE_DIR
    assert provider.cache_dir.parent == Path(tempfile.gettempdir())


# --------------------------------------------------------------------------- real transport


def test_default_curl_session_fails_fast_when_nothing_answers(tmp_path: Path) -> None:
    """yfinance's own curl_cffi session, pointed at a closed local port: no route to Yahoo."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed once the block ends: connections are refused
    provider = YFinanceProvider(cache_dir=tmp_path / "yf", timeout=2.0)
    session = provider.session
    assert type(session).__module__.startswith("curl_cffi")
    session.proxies = {"https": f"http://127.0.0.1:{port}", "http": f"http://127.0.0.1:{port}"}
    symbols = [f"S{i}" for i in range(120)]
    started = time.monotonic()
    got = provider.fetch(symbols, date.today() - timedelta(days=10), None)
    elapsed = time.monotonic() - started
    assert {r.error.kind for r in got.values()} == {ErrorKind.UNREACHABLE}
    assert elapsed < 30.0  # a hang guard, not a performance target (bench/ has those)
