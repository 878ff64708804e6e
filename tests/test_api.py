"""The read API through its WSGI app (the same `handle` functions-framework calls), over a lake
filled by the real embedded pipeline from the bundled real Yahoo recordings."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openapi_spec_validator import validate as validate_spec
from werkzeug.test import Client

from apilake import DEMO_DATA, SYMBOLS, Lake, open_lake, settings, stages
from barlake.adapters.yahoo_chart import load_chart
from barlake.api.app import build_api
from barlake.core.layout import daily_name


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    lk = open_lake(tmp_path_factory.mktemp("api") / "lake")
    lk.ingest()
    while lk.provider.advance():
        status = lk.ingest(*SYMBOLS, "NOSUCH")  # the last run records a failure, for /v1/runs
        if any("suspect answer" in (o.error or "") for o in status.outcomes()):
            lk.ingest(*SYMBOLS, "NOSUCH")  # the next run confirms MSFT's purged start
    return lk


def recorded(stage: str, symbol: str) -> pa.Table:
    bars = load_chart(DEMO_DATA / stage / f"{symbol}.json").bars
    assert bars is not None
    return bars


def body(lake: Lake, url: str, status: int = 200) -> dict:
    r = lake.get(url)
    assert r.status_code == status, r.get_data(as_text=True)
    assert r.headers["Content-Type"] == "application/json"
    return json.loads(r.get_data())


# ------------------------------------------------------------------ bars


def test_daily_bars_are_what_yahoo_recorded(lake: Lake) -> None:
    latest = recorded(stages()[-1], "MSFT")
    got = body(lake, "/v1/bars/MSFT?limit=5")
    assert got["symbol"] == "MSFT" and got["interval"] == "1d" and got["count"] == 5
    want = latest.slice(latest.num_rows - 5).to_pylist()
    assert [b["date"] for b in got["bars"]] == [w["date"].isoformat() for w in want]
    for b, w in zip(got["bars"], want, strict=True):
        for col in ("open", "high", "low", "close", "adj_close", "volume"):
            assert b[col] == w[col], col  # bit for bit: JSON carries the float64 exactly


def test_symbols_are_case_insensitive_and_windows_inclusive(lake: Lake) -> None:
    got = body(lake, "/v1/bars/msft?start=2025-08-18&end=2025-08-22")
    assert got["symbol"] == "MSFT"
    assert [b["date"] for b in got["bars"]] == [
        "2025-08-18",
        "2025-08-19",
        "2025-08-20",
        "2025-08-21",
        "2025-08-22",
    ]
    assert body(lake, "/v1/bars/MSFT?start=2030-01-01")["count"] == 0


def test_total_return_scales_prices_by_adj_close_over_close(lake: Lake) -> None:
    split = body(lake, "/v1/bars/MSFT?end=2025-08-20&limit=3")["bars"]
    total = body(lake, "/v1/bars/MSFT?end=2025-08-20&limit=3&adjust=total")["bars"]
    for s, t in zip(split, total, strict=True):
        factor = s["adj_close"] / s["close"]
        assert factor < 1  # before the 2025-08-21 ex-dividend day
        assert t["close"] == pytest.approx(s["adj_close"], rel=1e-12)
        assert t["open"] == pytest.approx(s["open"] * factor, rel=1e-12)
        assert t["volume"] == s["volume"]


def test_weekly_bars_summarise_the_daily_ones(lake: Lake) -> None:
    weeks = body(lake, "/v1/bars/MSFT?interval=1wk&start=2025-08-11")["bars"]
    days = body(lake, "/v1/bars/MSFT?start=2025-08-11")["bars"]
    assert [w["date"] for w in weeks] == ["2025-08-11", "2025-08-18", "2025-08-25"]
    for w in weeks:
        start = date.fromisoformat(w["date"])
        inside = [d for d in days if 0 <= (date.fromisoformat(d["date"]) - start).days < 7]
        assert w["sessions"] == len(inside)
        assert w["open"] == inside[0]["open"] and w["close"] == inside[-1]["close"]
        assert w["high"] == max(d["high"] for d in inside)
        assert w["low"] == min(d["low"] for d in inside)
        assert w["volume"] == sum(d["volume"] for d in inside)
    assert weeks[-1]["provisional"] is True and weeks[0]["provisional"] is False


def test_csv_and_parquet_carry_the_same_bars_as_json(lake: Lake) -> None:
    rows = body(lake, "/v1/bars/MSFT?limit=4")["bars"]
    r = lake.get("/v1/bars/MSFT?limit=4&format=csv")
    assert r.headers["Content-Type"] == "text/csv; charset=utf-8"
    parsed = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [p["symbol"] for p in parsed] == ["MSFT"] * 4
    assert [float(p["close"]) for p in parsed] == [b["close"] for b in rows]
    assert [int(p["volume"]) for p in parsed] == [b["volume"] for b in rows]
    r = lake.get("/v1/bars/MSFT?limit=4&format=parquet")
    assert r.headers["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(r.get_data()))
    assert table["close"].to_pylist() == [b["close"] for b in rows]
    assert [d.isoformat() for d in table["date"].to_pylist()] == [b["date"] for b in rows]


def test_whole_history_parquet_is_the_stored_object_itself(lake: Lake) -> None:
    r = lake.get("/v1/bars/MSFT?format=parquet")
    stored = lake.app.raw.read(daily_name("MSFT"))
    assert stored is not None and r.get_data() == stored.data


def test_batch_returns_each_symbol_and_names_the_missing(lake: Lake) -> None:
    got = body(lake, "/v1/bars?symbols=MSFT,aapl,ZZZZ,MSFT&limit=2")
    assert [x["symbol"] for x in got["results"]] == ["MSFT", "AAPL"]
    assert got["results"][0] == body(lake, "/v1/bars/MSFT?limit=2")
    assert got["errors"] == [{"symbol": "ZZZZ", "status": 404, "message": "no bars for ZZZZ"}]
    r = lake.get("/v1/bars?symbols=MSFT,AAPL,ZZZZ&limit=2&format=csv")
    lines = r.get_data(as_text=True).splitlines()
    assert lines[0].startswith("symbol,date") and len(lines) == 5
    assert r.headers["Barlake-Missing-Symbols"] == "ZZZZ"
    r = lake.get("/v1/bars?symbols=MSFT,AAPL&limit=2&format=parquet")
    assert (
        pq.read_table(io.BytesIO(r.get_data()))["symbol"].to_pylist() == ["MSFT"] * 2 + ["AAPL"] * 2
    )
    assert lake.get("/v1/bars?symbols=ZZZZ,YYYY").status_code == 404


# ------------------------------------------------------------------ HTTP semantics


def test_etag_revalidates_to_304(lake: Lake) -> None:
    r = lake.get("/v1/bars/AAPL?limit=3")
    etag = r.headers["ETag"]
    assert r.headers["Cache-Control"] == "private, no-cache"
    stored = lake.app.raw.stat(daily_name("AAPL"))
    assert stored is not None and etag.startswith(f'"{stored.generation}-')
    for header in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again = lake.get("/v1/bars/AAPL?limit=3", headers={"If-None-Match": header})
        assert again.status_code == 304 and again.get_data() == b""
        assert again.headers["ETag"] == etag
    other_view = lake.get("/v1/bars/AAPL?limit=4", headers={"If-None-Match": etag})
    assert other_view.status_code == 200 and other_view.headers["ETag"] != etag
    batch = lake.get("/v1/bars?symbols=AAPL,MSFT")
    assert (
        lake.get(
            "/v1/bars?symbols=AAPL,MSFT", headers={"If-None-Match": batch.headers["ETag"]}
        ).status_code
        == 304
    )


def test_second_read_is_served_from_the_cache(lake: Lake) -> None:
    first = lake.get("/v1/bars/AMZN?interval=1mo&adjust=none")
    second = lake.get("/v1/bars/AMZN?interval=1mo&adjust=none")
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit-l1")
    assert first.get_data() == second.get_data()
    assert second.headers["Server-Timing"].startswith("app;dur=")


def test_methods_head_options_and_unknown_routes(lake: Lake) -> None:
    c = lake.client
    r = c.post("/v1/bars/MSFT")
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD, OPTIONS"
    assert json.loads(r.get_data())["error"]["code"] == "method_not_allowed"
    assert c.get("/v1/cache/MSFT").status_code == 405
    r = c.options("/v1/cache/MSFT")
    assert r.status_code == 204 and r.headers["Allow"] == "DELETE, OPTIONS"
    full = c.get("/v1/bars/MSFT?limit=2")
    head = c.head("/v1/bars/MSFT?limit=2")
    assert head.status_code == 200 and head.get_data() == b""
    assert head.headers["Content-Length"] == str(len(full.get_data()))
    for path in ("/nope", "/v1/bars/MSFT/extra", "/v1/bars/", "/v1/runs/a/b"):
        r = c.get(path)
        assert r.status_code == 404 and json.loads(r.get_data())["error"]["code"] == "no_route"


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/v1/bars/MS..FT", "symbol"),
        ("/v1/bars/..", "symbol"),
        ("/v1/bars/%2E%2E%2Fstate.sqlite", None),  # decoded to a path: no such route
        ("/v1/bars/A%00B", "symbol"),
        ("/v1/bars/AAPL%20", "symbol"),
        ("/v1/bars/" + "A" * 26, "symbol"),
        ("/v1/bars/_5EGSPC", "symbol"),  # an object key is not a symbol
        ("/v1/bars/MSFT?interval=1h", "interval"),
        ("/v1/bars/MSFT?adjust=dividends", "adjust"),
        ("/v1/bars/MSFT?format=xml", "format"),
        ("/v1/bars/MSFT?start=2024-02-30", "start"),
        ("/v1/bars/MSFT?start=20240101", "start"),
        ("/v1/bars/MSFT?end=yesterday", "end"),
        ("/v1/bars/MSFT?start=2025-02-01&end=2025-01-01", "start"),
        ("/v1/bars/MSFT?limit=0", "limit"),
        ("/v1/bars/MSFT?limit=100001", "limit"),
        ("/v1/bars/MSFT?limit=-1", "limit"),
        ("/v1/bars/MSFT?limit=1.5", "limit"),
        ("/v1/bars/MSFT?limit=", "limit"),
        ("/v1/bars/MSFT?limit=1&limit=2", "limit"),
        ("/v1/bars/MSFT?symbol=AAPL", "symbol"),
        ("/v1/bars", "symbols"),
        ("/v1/bars?symbols=", "symbols"),
        ("/v1/bars?symbols=AAPL,,MSFT", "symbols"),
        ("/v1/bars?symbols=" + ",".join(f"S{i}" for i in range(51)), "symbols"),
        ("/v1/symbols?limit=1001", "limit"),
        ("/v1/symbols?after=a/b", "after"),
        ("/v1/runs/bad%20id", "run_id"),
        ("/v1/profiles/MSFT?x=1", "x"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(lake: Lake, url: str, parameter: str) -> None:
    r = lake.get(url)
    error = json.loads(r.get_data())["error"]
    if parameter is None:
        assert r.status_code == 404
        return
    assert r.status_code == 400, error
    assert error["code"] == "invalid_parameter" and error.get("parameter") == parameter
    assert error["message"]
    assert r.headers["Cache-Control"] == "no-store"


def test_symbols_outside_the_object_alphabet_map_to_escaped_keys(lake: Lake) -> None:
    for symbol in ("%5EGSPC", "EURUSD=X", "BRK-B", "7203.T"):
        r = lake.get(f"/v1/bars/{symbol}")
        assert r.status_code == 404  # valid, simply not in this lake
        assert "no bars" in json.loads(r.get_data())["error"]["message"]


# ------------------------------------------------------------------ lake, runs, health


def test_symbols_inventory_pages_through_every_symbol(lake: Lake) -> None:
    seen, after = [], None
    while True:
        page = body(lake, "/v1/symbols?limit=3" + (f"&after={after}" if after else ""))
        seen += [s["symbol"] for s in page["symbols"]]
        after = page["next_after"]
        if after is None:
            break
    assert seen == sorted(SYMBOLS)
    assert page["totals"]["symbols"] == 4
    msft = next(s for s in body(lake, "/v1/symbols?after=GOOG&limit=1")["symbols"] if s["symbol"])
    assert msft["symbol"] == "MSFT" and msft["last_date"] == "2025-08-25"
    assert isinstance(msft["stale"], bool) and msft["rows"] > 100


def test_profile_is_the_stored_profile(lake: Lake) -> None:
    got = body(lake, "/v1/profiles/msft")
    assert got == lake.app.read.profile("MSFT")
    assert body(lake, "/v1/profiles/ZZZZ", 404)["error"]["code"] == "not_found"


def test_runs_report_completeness_and_per_symbol_errors(lake: Lake) -> None:
    latest = body(lake, "/v1/runs/latest")
    assert latest["complete"] is True
    assert latest["batches_done"] == latest["batches_expected"] == 1
    assert [e["symbol"] for e in latest["errors"]] == ["NOSUCH"]
    assert latest["errors"][0]["kind"] == "not_found" and latest["counts"]["failed"] == 1
    assert body(lake, f"/v1/runs/{latest['run_id']}") == latest
    assert body(lake, "/v1/runs/never-ran", 404)["error"]["message"] == "no run never-ran"


def test_health_reports_each_dependency(lake: Lake) -> None:
    got = body(lake, "/v1/health")
    assert got["status"] == "ok"
    for part in ("storage", "state", "cache"):
        assert got[part]["status"] == "ok" and got[part]["latency_ms"] >= 0
    assert got["cache"]["backend"] == "MemoryCache"
    assert lake.get("/v1/health").headers["Cache-Control"] == "no-store"


def test_forgetting_a_symbol_makes_the_next_read_a_miss(lake: Lake) -> None:
    from barlake.api.app import ApiApp
    from barlake.api.reads import CachedReads

    app = lake.app
    keyed = ApiApp(CachedReads(app.raw, app.derived, app.state, app.cache), ["k"])
    c = Client(keyed)
    c.get("/v1/bars/GOOG", headers={"X-API-Key": "k"})
    assert c.get("/v1/bars/GOOG", headers={"X-API-Key": "k"}).headers["X-Cache"] == "hit-l1"
    r = c.delete("/v1/cache/goog", headers={"X-API-Key": "k"})
    assert r.status_code == 200 and json.loads(r.get_data())["dropped"] >= 1
    assert c.get("/v1/bars/GOOG", headers={"X-API-Key": "k"}).headers["X-Cache"] == "miss"


def test_admin_endpoints_are_disabled_without_api_keys(lake: Lake) -> None:
    r = lake.client.delete("/v1/cache/GOOG")
    assert r.status_code == 403
    assert json.loads(r.get_data())["error"]["code"] == "admin_disabled"


# ------------------------------------------------------------------ keys and the document


def test_api_keys_guard_data_and_admin_routes_only(lake: Lake) -> None:
    keyed = build_api(settings(Path(lake.app.settings.lake_dir), api_keys=" k-one , k-two,"))
    c = Client(keyed)
    for url in ("/v1/bars/MSFT", "/v1/symbols", "/v1/runs/latest", "/v1/profiles/MSFT"):
        for headers in ({}, {"X-API-Key": "nope"}, {"Authorization": "Bearer k-one"}):
            r = c.get(url, headers=headers)
            assert r.status_code == 401, (url, headers)
            assert json.loads(r.get_data())["error"]["code"] == "unauthorized"
        assert c.get(url, headers={"X-API-Key": "k-two"}).status_code == 200
    assert c.delete("/v1/cache/MSFT").status_code == 401
    for url in ("/", "/openapi.json", "/v1/health"):
        assert c.get(url).status_code == 200


def test_openapi_document_is_valid_3_1_with_keys_or_without(lake: Lake) -> None:
    from barlake.api import openapi

    for keyed in (False, True):
        spec = openapi.build(keyed)
        validate_spec(spec)
        assert spec["openapi"] == "3.1.0"
        ops = [op for item in spec["paths"].values() for op in item.values()]
        assert all(op["responses"] for op in ops)
        assert any("security" in op for op in ops) is keyed
    served = json.loads(lake.get("/openapi.json").get_data())
    validate_spec(served)
