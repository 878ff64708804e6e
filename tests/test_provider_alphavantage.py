"""Alpha Vantage adapter through its real HTTP client against a local server.

Recordings: asmarques/alphavantage and crazzyghost/alphavantage-java bodies (SOURCES.md). The
error bodies (HTTP 200 with `Note`, `Information`, `Error Message`) are synthesized with the
wordings Alpha Vantage is quoted using; none is recorded under a permissive licence.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from barlake.adapters.alphavantage_provider import AlphaVantageProvider
from barlake.ports import ErrorKind
from provider_server import FIXTURES, Answer, html_answer, json_answer, serve

KEY = "TESTKEY123"
PREMIUM = {
    "Information": "Thank you for using Alpha Vantage! This is a premium endpoint. You may "
    "subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly "
    "unlock all premium endpoints"
}


class NoPacing:
    def acquire(self, provider: str, cost: int = 1) -> float:
        return 0.0


def body(name: str) -> dict:
    return json.loads((FIXTURES / "alphavantage" / name).read_text())


def by_function(answers: dict[str, Answer]):
    return lambda query: answers[query["function"]]


def provider(url: str, now: datetime, **kw) -> AlphaVantageProvider:
    return AlphaVantageProvider(KEY, url, pacer=NoPacing(), clock=lambda: now, **kw)


def test_adjusted_series_maps_value_by_value_with_its_dividend() -> None:
    doc = body("time_series_daily_adjusted_IBM_compact_2025-01-13.json")
    now = datetime(2025, 1, 14, 12, tzinfo=UTC)
    with serve() as server:
        server.route("/query", json_answer(doc))
        got = provider(server.url, now).fetch(["IBM"], date(2024, 9, 1), None)["IBM"]
    assert got.error is None
    series = doc["Time Series (Daily)"]
    bars = got.bars.to_pylist()
    assert [b["date"].isoformat() for b in bars] == sorted(d for d in series if d >= "2024-09-01")
    for bar in bars:
        day = series[bar["date"].isoformat()]
        assert bar["open"] == float(day["1. open"]) and bar["high"] == float(day["2. high"])
        assert bar["low"] == float(day["3. low"]) and bar["close"] == float(day["4. close"])
        assert bar["adj_close"] == float(day["5. adjusted close"])
        assert bar["volume"] == int(day["6. volume"])
    assert got.actions.to_pylist() == [
        {"symbol": "IBM", "date": date(2024, 11, 12), "kind": "dividend", "value": 1.67}
    ]
    assert date(2025, 1, 9) not in {b["date"] for b in bars}  # market closed (national mourning)
    seen = server.seen[0]
    assert seen.query["function"] == "TIME_SERIES_DAILY_ADJUSTED"
    assert seen.query["outputsize"] == "compact" and seen.query["apikey"] == KEY


def test_free_key_premium_answer_switches_to_the_daily_series_once() -> None:
    doc = body("time_series_daily_MSFT_compact_2018-06-08.json")
    now = datetime(2018, 6, 9, tzinfo=UTC)
    answers = {
        "TIME_SERIES_DAILY_ADJUSTED": json_answer(PREMIUM),
        "TIME_SERIES_DAILY": json_answer(doc),
    }
    with serve() as server:
        server.route("/query", by_function(answers))
        av = provider(server.url, now)
        first = av.fetch(["MSFT"], date(2018, 6, 1), None)["MSFT"]
        second = av.fetch(["MSFT"], date(2018, 6, 1), None)["MSFT"]
    functions = [s.query["function"] for s in server.seen]
    assert functions == ["TIME_SERIES_DAILY_ADJUSTED", "TIME_SERIES_DAILY", "TIME_SERIES_DAILY"]
    assert first.error is None and second.error is None
    day = doc["Time Series (Daily)"]["2018-06-08"]
    last = first.bars.to_pylist()[-1]
    assert last["date"] == date(2018, 6, 8)
    assert last["open"] == 101.0924 == float(day["1. open"])
    assert last["close"] == last["adj_close"] == float(day["4. close"])  # no adjustment known
    assert last["volume"] == int(day["5. volume"])
    assert first.actions.num_rows == 0


def test_intraday_last_refreshed_makes_the_partial_bar_as_of_that_time() -> None:
    doc = body("time_series_daily_adjusted_IBM_2rows_2020-05-08_intraday.json")
    now = datetime(2020, 5, 8, 19, tzinfo=UTC)
    with serve() as server:
        server.route("/query", json_answer(doc))
        got = provider(server.url, now).fetch(["IBM"], date(2020, 5, 1), None)["IBM"]
    assert got.as_of == datetime(2020, 5, 8, 18, 7, 57, tzinfo=UTC)  # 14:07:57 EDT
    assert got.actions.to_pylist() == [
        {"symbol": "IBM", "date": date(2020, 5, 7), "kind": "dividend", "value": 1.63}
    ]


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (
            {
                "Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 "
                "calls per minute and 500 calls per day."
            },
            ErrorKind.RATE_LIMITED,
        ),
        (
            {
                "Information": f"We have detected your API key as {KEY} and our standard API rate "
                "limit is 25 requests per day."
            },
            ErrorKind.RATE_LIMITED,
        ),
        (
            {
                "Information": "Thank you for using Alpha Vantage! Please consider spreading out "
                "your free API requests more sparingly (1 request per second)."
            },
            ErrorKind.RATE_LIMITED,
        ),
        (PREMIUM, ErrorKind.AUTH),
        (
            {
                "Error Message": "Invalid API call. Please retry or visit the documentation "
                "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
            },
            ErrorKind.NOT_FOUND,
        ),
        (
            {
                "Error Message": "the parameter apikey is invalid or missing. Please claim your "
                "free API key on (https://www.alphavantage.co/support/#api-key)."
            },
            ErrorKind.AUTH,
        ),
        ({"Meta Data": {}}, ErrorKind.TRANSIENT),
        ({"Time Series (Daily)": {}}, ErrorKind.NO_DATA),
    ],
)
def test_in_body_errors_with_http_200_are_classified(answer: dict, kind: ErrorKind) -> None:
    with serve() as server:
        server.route("/query", json_answer(answer))
        got = provider(server.url, datetime(2025, 1, 14, tzinfo=UTC), adjusted=False).fetch(
            ["IBM"], date(2025, 1, 1), None
        )["IBM"]
    assert got.bars is None and got.error is not None
    assert got.error.kind is kind, got.error
    assert KEY not in got.error.message
    if "detected your API key" in str(answer):
        assert "API key as … and our standard API rate limit" in got.error.message


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (html_answer(200), ErrorKind.TRANSIENT),
        (json_answer({"detail": "x"}, 429), ErrorKind.RATE_LIMITED),
        (Answer(502, b"Bad Gateway", "text/plain"), ErrorKind.TRANSIENT),
    ],
)
def test_http_errors(answer: Answer, kind: ErrorKind) -> None:
    with serve() as server:
        server.route("/query", answer)
        got = provider(server.url, datetime(2025, 1, 14, tzinfo=UTC)).fetch(["IBM"], None, None)
    assert got["IBM"].error is not None and got["IBM"].error.kind is kind
    assert server.seen[0].query["outputsize"] == "full"  # no start: the whole history


def test_symbol_mapping() -> None:
    doc = body("time_series_daily_adjusted_IBM_2rows_2020-05-08_intraday.json")
    with serve() as server:
        server.route("/query", json_answer(doc))
        got = provider(server.url, datetime(2020, 5, 9, tzinfo=UTC)).fetch(
            ["VOD.L", "SHOP.TO", "BRK-B", "7203.T", "^GSPC", "EURUSD=X"], date(2020, 5, 1), None
        )
    assert [s.query["symbol"] for s in server.seen] == ["VOD.LON", "SHOP.TRT", "BRK-B"]
    for symbol in ("7203.T", "^GSPC", "EURUSD=X"):
        assert got[symbol].error is not None and got[symbol].error.kind is ErrorKind.NOT_FOUND
    assert got["VOD.L"].bars["symbol"][0].as_py() == "VOD.L"
