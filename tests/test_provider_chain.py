"""The provider chain end to end (embedded): Yahoo (the real yfinance code, offline transport)
blocked → Tiingo (real HTTP client, local server) serves the symbol, its rows stored as
provisional with their provenance → Yahoo answers again → its values replace Tiingo's, without a
restatement, the differences recorded.

The Tiingo body here is synthesized from the Yahoo recording (same sessions, one close moved by
1%): no Tiingo recording covers the sessions of a Yahoo recording.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from werkzeug.test import Client

from barlake.adapters.chain_provider import ChainProvider
from barlake.adapters.tiingo_provider import TiingoProvider
from barlake.adapters.yahoo_chart import load_chart
from barlake.adapters.yfinance_provider import YFinanceProvider
from barlake.api.app import build_api
from barlake.config import Settings, build_embedded, run_embedded
from barlake.core.codec import decode_daily, decode_provenance
from barlake.core.layout import daily_name
from barlake.core.merge import bars_equal
from barlake.messages import IngestRequest
from barlake.ports import ErrorKind, FetchResult, ProviderError
from barlake.providers import spec_error
from conftest import FIXTURES
from provider_server import json_answer, serve
from yahoo_offline import OfflineYahoo

AAPL = FIXTURES / "chart_api" / "chart-AAPL-2020-08-31-to-2020-11-07.json"
NOW = datetime(2026, 11, 21, 12, tzinfo=UTC)
MOVED = date(2020, 9, 15)


@pytest.fixture(autouse=True)
def _quiet_yfinance() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="yfinance")


def tiingo_rows_from(yahoo_bars, actions) -> list[dict]:
    events = {(a["date"], a["kind"]): a["value"] for a in actions.to_pylist()}
    rows = []
    for b in yahoo_bars.to_pylist():
        close = b["close"] * (1.01 if b["date"] == MOVED else 1.0)
        rows.append(
            {
                "date": f"{b['date'].isoformat()}T00:00:00.000Z",
                "open": b["open"],
                "high": max(b["high"], close),
                "low": b["low"],
                "close": close,
                "volume": b["volume"],
                "adjClose": b["adj_close"],
                "divCash": events.get((b["date"], "dividend"), 0.0),
                "splitFactor": events.get((b["date"], "split"), 1.0),
            }
        )
    return rows


class NoPacing:
    def acquire(self, provider: str, cost: int = 1) -> float:
        return 0.0


def test_yahoo_block_served_by_tiingo_then_healed_to_yahoo(tmp_path: Path) -> None:
    recording = load_chart(AAPL)
    yahoo = OfflineYahoo()
    yahoo.status("AAPL", 429)  # Yahoo blocks us
    with serve() as server:
        server.route(
            "/tiingo/daily/AAPL/prices",
            json_answer(tiingo_rows_from(recording.bars, recording.actions)),
        )
        chain = ChainProvider(
            [
                YFinanceProvider(yahoo.session(), cache_dir=tmp_path / "yf"),
                TiingoProvider("t" * 40, server.url, pacer=NoPacing(), clock=lambda: NOW),
            ]
        )
        app = build_embedded(
            Settings.from_env({}, lake_dir=str(tmp_path / "lake")),
            provider=chain,
            clock=lambda: NOW,
        )
        first = run_embedded(
            app,
            IngestRequest(kind="manual", run_id="r1", symbols=("AAPL",), start=date(2020, 8, 31)),
        )
        assert [o.status for o in first.outcomes()] == ["ok"]
        stored = app.raw.read(daily_name("AAPL"))
        bars, actions = decode_daily(stored.data)
        provenance = decode_provenance(stored.data)
        assert set(provenance.column("source").to_pylist()) == {"tiingo"}
        assert provenance.column("fetched_at")[0].as_py() == NOW
        moved = next(b for b in bars.to_pylist() if b["date"] == MOVED)
        yahoo_moved = next(b for b in recording.bars.to_pylist() if b["date"] == MOVED)
        assert moved["close"] == yahoo_moved["close"] * 1.01
        assert actions.equals(recording.actions)

        api = Client(build_api(app=app))
        reply = api.get("/v1/provenance/AAPL")
        assert reply.status_code == 200
        (run,) = reply.get_json()["runs"]
        assert run["source"] == "tiingo" and run["rows"] == bars.num_rows
        assert run["first"] == "2020-08-31" and run["fetched_from"] == "2026-11-21T12:00:00Z"
        assert app.read.provenance("AAPL") == reply.get_json()["runs"]

        yahoo.record("AAPL", AAPL)  # Yahoo answers again
        second = run_embedded(app, IngestRequest(kind="manual", run_id="r2", symbols=("AAPL",)))
        server_requests = len(server.seen)
    (outcome,) = second.outcomes()
    assert outcome.status == "ok" and outcome.restatement is None  # not a restatement
    assert server_requests == 1  # Tiingo was not asked again
    healed = app.raw.read(daily_name("AAPL"))
    bars, actions = decode_daily(healed.data)
    assert bars_equal(bars, recording.bars)
    assert set(decode_provenance(healed.data).column("source").to_pylist()) == {"yahoo"}
    # The window went back to the first provisional row, past the usual 5-session overlap.
    starts = [int(p["period1"]) for _, p in yahoo.chart_log if "period1" in p]
    assert datetime.fromtimestamp(min(starts), UTC).date() == date(2020, 8, 31)
    (run,) = Client(build_api(app=app)).get("/v1/provenance/AAPL").get_json()["runs"]
    assert run["source"] == "yahoo"
    assert Client(build_api(app=app)).get("/v1/provenance/NOPE").status_code == 404
    (record,) = app.state.restatements("AAPL")
    assert record.kinds == ("fallback_replaced",)
    (diff,) = record.evidence["differences"]
    assert diff["date"] == MOVED.isoformat()
    assert diff["close"] == [yahoo_moved["close"] * 1.01, yahoo_moved["close"]]


class Fixed:
    def __init__(self, name: str, answers: dict[str, FetchResult]) -> None:
        self.name, self.answers, self.asked = name, answers, []

    def fetch(self, symbols, start, end):
        self.asked.append(list(symbols))
        return {s: self.answers[s] for s in symbols}


def _err(symbol: str, kind: ErrorKind) -> FetchResult:
    return FetchResult(symbol, error=ProviderError(kind, f"{kind} from test"))


def test_chain_falls_back_per_symbol_only_on_kinds_worth_it() -> None:
    import pyarrow as pa

    from barlake.core.schema import BAR_SCHEMA

    bars = pa.table({n: [] for n in BAR_SCHEMA.names}, schema=BAR_SCHEMA)
    ok = lambda s: FetchResult(s, bars=bars)  # noqa: E731
    primary = Fixed(
        "yahoo",
        {
            "A": ok("A"),
            "B": _err("B", ErrorKind.RATE_LIMITED),
            "C": _err("C", ErrorKind.NO_DATA),
            "D": _err("D", ErrorKind.NOT_FOUND),
            "E": _err("E", ErrorKind.NOT_FOUND),
            "F": _err("F", ErrorKind.UNREACHABLE),
        },
    )
    fallback = Fixed(
        "tiingo",
        {
            "B": ok("B"),
            "D": ok("D"),
            "E": _err("E", ErrorKind.NOT_FOUND),
            "F": _err("F", ErrorKind.AUTH),
        },
    )
    got = ChainProvider([primary, fallback]).fetch(["A", "B", "C", "D", "E", "F"], None, None)
    assert fallback.asked == [["B", "D", "E", "F"]]  # never A (answered) nor C (no data)
    assert {s: r.source for s, r in got.items() if r.error is None} == {
        "A": "yahoo",
        "B": "tiingo",
        "D": "tiingo",
    }
    assert got["C"].error.kind is ErrorKind.NO_DATA
    assert got["E"].error.message == "not_found from test"  # the primary's own words
    assert got["F"].error.kind is ErrorKind.UNREACHABLE and "then tiingo" in got["F"].error.message


def test_chain_spec() -> None:
    assert spec_error("yahoo,tiingo") is None
    assert spec_error("yahoo,tiingo,polygon") is None
    assert "twice" in (spec_error("yahoo,yahoo") or "")
    assert "bloomberg" in (spec_error("yahoo,bloomberg") or "")
    assert Settings.from_env({"BARLAKE_PROVIDER": "yahoo,tiingo"}).provider == "yahoo,tiingo"
