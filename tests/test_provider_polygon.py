"""Polygon/Massive adapter through its real HTTP client against a local server.

Recordings: polygon-io/client-python mocks (SOURCES.md): the AAPL aggregates across the 2005
DST change, the grouped-daily documentation sample, the reference splits and dividends. Error
bodies (401/403/429) are synthesized in the shapes quoted from Polygon; so are the aggregate
windows around a recorded split and dividend (labelled below).
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from barlake.adapters.polygon_provider import PolygonProvider, adj_closes
from barlake.ports import ErrorKind
from provider_server import FIXTURES, Answer, file_answer, html_answer, json_answer, serve

KEY = "polygon-test-key"
EMPTY = json_answer({"results": [], "status": "OK", "request_id": "x"})
NY = ZoneInfo("America/New_York")


class NoPacing:
    def acquire(self, provider: str, cost: int = 1) -> float:
        return 0.0


def body(name: str) -> dict:
    return json.loads((FIXTURES / "polygon" / name).read_text())


def provider(url: str, now: datetime, **kw) -> PolygonProvider:
    return PolygonProvider(KEY, url, pacer=NoPacing(), clock=lambda: now, **kw)


def ny_midnight_ms(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=NY).timestamp() * 1000)


def test_aggregates_map_value_by_value_across_dst() -> None:
    doc = body("aggs_range_1_day_AAPL_2005-04-01_2005-04-04.json")
    now = datetime(2005, 4, 5, 12, tzinfo=UTC)
    with serve() as server:
        server.route("/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-05", json_answer(doc))
        server.route("/v3/reference/splits", EMPTY)
        server.route("/v3/reference/dividends", EMPTY)
        got = provider(server.url, now).fetch(["AAPL"], date(2005, 4, 1), None)["AAPL"]
    assert got.error is None, got.error
    bars = got.bars.to_pylist()
    assert [b["date"] for b in bars] == [date(2005, 4, 1), date(2005, 4, 4)]  # 05:00Z, 04:00Z
    for bar, row in zip(bars, doc["results"], strict=True):
        assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (
            row["o"],
            row["h"],
            row["l"],
            row["c"],
        )
        assert bar["adj_close"] == row["c"]  # no dividend
        assert bar["volume"] == int(row["v"]) and isinstance(bar["volume"], int)
    first = server.seen[0]
    assert first.headers["Authorization"] == f"Bearer {KEY}"
    assert first.query["adjusted"] == "true"
    assert server.seen[1].query == {
        "ticker": "AAPL",
        "execution_date.gte": "2005-04-01",
        "limit": "1000",
    }


def test_recorded_split_becomes_an_action_and_future_splits_are_ignored() -> None:
    """Synthesized aggregates for GOOGL around the recorded 2022-07-18 1→20 split."""
    days = [date(2022, 7, 14), date(2022, 7, 15), date(2022, 7, 18), date(2022, 7, 19)]
    aggs = {
        "results": [
            {"o": 110.0, "h": 112.0, "l": 109.0, "c": 111.0, "v": 1000.0, "t": ny_midnight_ms(d)}
            for d in days
        ],
        "status": "OK",
    }
    with serve() as server:
        server.route("/v2/aggs/ticker/GOOGL/range/1/day/2022-07-14/2022-07-19", json_answer(aggs))
        server.route("/v3/reference/splits", file_answer("polygon/reference_splits.json"))
        server.route("/v3/reference/dividends", EMPTY)
        now = datetime(2022, 7, 19, 23, tzinfo=UTC)
        got = provider(server.url, now).fetch(["GOOGL"], date(2022, 7, 14), None)["GOOGL"]
        early = datetime(2022, 7, 17, 23, tzinfo=UTC)  # before the split: it is only announced
        server.route("/v2/aggs/ticker/GOOGL/range/1/day/2022-07-14/2022-07-17", json_answer(aggs))
        before = provider(server.url, early).fetch(["GOOGL"], date(2022, 7, 14), None)["GOOGL"]
    assert got.actions.to_pylist() == [
        {"symbol": "GOOGL", "date": date(2022, 7, 18), "kind": "split", "value": 20.0}
    ]
    assert before.actions.num_rows == 0


def test_recorded_dividend_builds_adj_close_as_yahoo_does() -> None:
    """Synthesized AIRTP aggregates around a recorded ex-date, recorded dividends body."""
    dividends = body("reference_dividends.json")["results"]
    airtp = next(d for d in dividends if d["ticker"] == "AIRTP")
    ex = date.fromisoformat(airtp["ex_dividend_date"])
    days = [ex - timedelta(days=k) for k in (3, 2, 1)] + [ex, ex + timedelta(days=1)]
    days = [d for d in days if d.weekday() < 5]
    closes = [20.0 + i for i in range(len(days))]
    aggs = {
        "results": [
            {"o": c, "h": c, "l": c, "c": c, "v": 10.0, "t": ny_midnight_ms(d)}
            for d, c in zip(days, closes, strict=True)
        ],
        "status": "OK",
    }
    now = datetime.combine(days[-1], datetime.min.time(), UTC) + timedelta(days=1)
    path = f"/v2/aggs/ticker/AIRTP/range/1/day/{days[0]}/{now.date()}"
    with serve() as server:
        server.route(path, json_answer(aggs))
        server.route("/v3/reference/splits", EMPTY)
        server.route("/v3/reference/dividends", json_answer(body("reference_dividends.json")))
        got = provider(server.url, now).fetch(["AIRTP"], days[0], None)["AIRTP"]
    assert got.error is None, got.error
    bars = {b["date"]: b for b in got.bars.to_pylist()}
    prev = max(d for d in days if d < ex)
    factor = 1 - airtp["cash_amount"] / bars[prev]["close"]
    for d, bar in bars.items():
        expected = bar["close"] * factor if d < ex else bar["close"]
        assert bar["adj_close"] == pytest.approx(expected, rel=1e-12)
    assert {"symbol": "AIRTP", "date": ex, "kind": "dividend", "value": airtp["cash_amount"]} in (
        got.actions.to_pylist()
    )


def test_adj_closes_law() -> None:
    assert adj_closes([10.0, 10.0, 9.0], [0.0, 0.0, 1.0]) == [9.0, 9.0, 9.0]
    assert adj_closes([10.0, None, 5.0], [0.0, 0.0, 0.0]) == [10.0, None, 5.0]


def test_grouped_daily_serves_a_universe_in_one_request_per_day() -> None:
    now = datetime(2020, 10, 14, 23, tzinfo=UTC)
    grouped = "/v2/aggs/grouped/locale/us/market/stocks/2020-10-14"
    with serve() as server:
        server.route(
            grouped, file_answer("polygon/aggs_grouped_us_stocks_sample_GIK_2020-10-14.json")
        )
        server.route("/v3/reference/splits", EMPTY)
        server.route("/v3/reference/dividends", EMPTY)
        got = provider(server.url, now).fetch(["GIK", "AAPL", "MSFT"], date(2020, 10, 14), None)
    assert server.paths() == [grouped, "/v3/reference/splits", "/v3/reference/dividends"]
    assert "ticker" not in server.seen[1].query  # the market's events, not one ticker's
    (bar,) = got["GIK"].bars.to_pylist()
    row = body("aggs_grouped_us_stocks_sample_GIK_2020-10-14.json")["results"][0]
    assert bar["date"] == date(2020, 10, 14)  # t is 20:00Z: the New York date
    assert (bar["open"], bar["high"], bar["low"], bar["close"], bar["volume"]) == (
        row["o"],
        row["h"],
        row["l"],
        row["c"],
        row["v"],
    )
    for symbol in ("AAPL", "MSFT"):
        assert got[symbol].error is not None and got[symbol].error.kind is ErrorKind.NO_DATA


def test_next_url_pages_are_followed() -> None:
    doc = body("aggs_range_1_day_AAPL_2005-04-01_2005-04-04.json")
    first = {**doc, "results": doc["results"][:1]}
    second = {**doc, "results": doc["results"][1:]}
    now = datetime(2005, 4, 5, 12, tzinfo=UTC)
    with serve() as server:
        first["next_url"] = f"{server.url}/v2/aggs/page2"
        server.route("/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-05", json_answer(first))
        server.route("/v2/aggs/page2", json_answer(second))
        server.route("/v3/reference/splits", EMPTY)
        server.route("/v3/reference/dividends", EMPTY)
        got = provider(server.url, now).fetch(["AAPL"], date(2005, 4, 1), None)["AAPL"]
    assert got.bars.num_rows == 2
    assert server.seen[1].headers["Authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize(
    ("answer", "kind"),
    [
        (
            json_answer({"status": "ERROR", "request_id": "r", "error": "Unknown API Key"}, 401),
            ErrorKind.AUTH,
        ),
        (
            json_answer(
                {
                    "status": "NOT_AUTHORIZED",
                    "request_id": "r",
                    "message": "Your plan doesn't include this data timeframe.",
                },
                403,
            ),
            ErrorKind.AUTH,
        ),
        (
            json_answer(
                {
                    "status": "ERROR",
                    "request_id": "r",
                    "error": "You've exceeded the maximum requests per minute, please wait or "
                    "upgrade your subscription to continue. https://polygon.io/pricing",
                },
                429,
            ),
            ErrorKind.RATE_LIMITED,
        ),
        (json_answer({"status": "ERROR", "request_id": "r", "error": "boom"}), ErrorKind.TRANSIENT),
        (json_answer({"status": "NOT_AUTHORIZED", "message": "not entitled"}), ErrorKind.AUTH),
        (html_answer(200), ErrorKind.TRANSIENT),
        (Answer(500, b"", "text/plain"), ErrorKind.TRANSIENT),
        (json_answer({"ticker": "AAPL", "resultsCount": 0, "status": "OK"}), ErrorKind.NO_DATA),
    ],
)
def test_errors_are_classified_and_never_bars(answer: Answer, kind: ErrorKind) -> None:
    now = datetime(2005, 4, 5, 12, tzinfo=UTC)
    with serve() as server:
        server.route("/v2/aggs/ticker/AAPL/range/1/day/2005-04-01/2005-04-05", answer)
        got = provider(server.url, now).fetch(["AAPL"], date(2005, 4, 1), None)["AAPL"]
    assert got.bars is None and got.error is not None
    assert got.error.kind is kind, got.error
    assert KEY not in got.error.message


def test_symbol_mapping() -> None:
    now = datetime(2005, 4, 5, 12, tzinfo=UTC)
    with serve() as server:
        got = provider(server.url, now, grouped=False).fetch(
            ["BRK-B", "^GSPC", "7203.T", "EURUSD=X"], date(2005, 4, 1), None
        )
    assert server.paths()[0] == "/v2/aggs/ticker/BRK.B/range/1/day/2005-04-01/2005-04-05"
    for symbol in ("^GSPC", "7203.T", "EURUSD=X"):
        assert got[symbol].error.kind is ErrorKind.NOT_FOUND
