"""/v1/indicators and /v1/analytics through the WSGI app, on real bars, against the reference
libraries called directly (TA-Lib, empyrical-reloaded).

The lake holds what the pipeline stores: 20 years of S&P 500 and NASDAQ Composite daily bars
(arch.data), the S&P 500 with holes cut into its history, and NVDA (4:1 split on 2021-07-20)
and MSFT (dividends) as Yahoo recorded them, with their corporate actions. Tolerances as in
test_indicators.py / test_performance.py: TA-Lib outputs bit for bit (JSON carries float64
exactly), derived columns rtol 1e-12, statistics rtol 1e-9.
"""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import date
from pathlib import Path

import empyrical as ep
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import talib
from werkzeug.test import Client

import test_indicators as ti
from analytics_data import MSFT, NVDA, arch_bars, column, recorded
from apilake import settings
from barlake.api.app import ApiApp, build_api
from barlake.config import App, build_embedded
from barlake.core import indicators as ind
from barlake.core.adjust import adjust
from barlake.core.aggregate import aggregate
from barlake.core.codec import encode_daily
from barlake.core.layout import daily_name
from barlake.core.schema import empty_actions

RTOL = 1e-9


def store(app: App, symbol: str, bars: pa.Table, actions: pa.Table | None = None) -> None:
    bars = bars.set_column(0, "symbol", pa.array([symbol] * bars.num_rows, pa.string()))
    bars = bars.cast(arch_bars().schema)
    app.raw.write(daily_name(symbol), encode_daily(bars, actions or empty_actions()))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[App, ApiApp]:
    app = build_embedded(settings(tmp_path_factory.mktemp("analytics") / "lake"))
    sp = arch_bars()
    store(app, "^GSPC", sp)
    store(app, "^IXIC", arch_bars("nasdaq", "^IXIC"))
    keep = np.ones(sp.num_rows, dtype=bool)
    keep[2000:2090] = False
    keep[::13] = False
    store(app, "GAPPY", sp.filter(pa.array(keep)))
    for path, symbol in ((NVDA, "NVDA"), (MSFT, "MSFT")):
        bars, actions = recorded(path)
        store(app, symbol, bars, actions)
    return app, build_api(app=app)


def get(lake, url: str, status: int = 200, **kw):
    r = Client(lake[1]).get(url, **kw)
    assert r.status_code == status, r.get_data(as_text=True)[:500]
    return r


def rows(lake, url: str) -> tuple[dict, pa.Table]:
    doc = json.loads(get(lake, url).get_data())
    names = ["date", *(c for i in doc["indicators"] for c in i["columns"])]
    table = pa.table({n: [r.get(n) for r in doc["rows"]] for n in [*names, "close"]})
    return doc, table


def bars_of(app: App, symbol: str, how: str = "split", interval: str = "1d") -> pa.Table:
    from barlake.core.codec import decode_daily

    obj = app.raw.read(daily_name(symbol))
    bars, actions = decode_daily(obj.data)
    bars = adjust(bars, actions, how)
    if interval != "1d":
        bars = aggregate(bars, interval, bars["date"][-1].as_py())
    return bars


def check(got: pa.Table, want: dict[str, np.ndarray]) -> None:
    ti.check_equal(got.select(["date", *want]).cast(pa.schema(
        [pa.field("date", pa.string()), *(pa.field(n, pa.float64()) for n in want)]
    )), want)  # fmt: skip


# ------------------------------------------------------------------ indicators


@pytest.mark.parametrize("name", sorted(ind.INDICATORS))
def test_every_indicator_over_http_equals_talib_on_20_years(lake, name: str) -> None:
    doc, got = rows(lake, f"/v1/indicators/%5EGSPC?name={name}")
    assert doc["count"] == got.num_rows == 5031 and doc["interval"] == "1d"
    assert doc["indicators"][0]["params"] == ind.INDICATORS[name].defaults()
    check(got, ti.reference(name, ti.arrays(bars_of(lake[0], "^GSPC"))))


def test_talib_parameters_and_every_macd_column(lake) -> None:
    url = "/v1/indicators/%5EGSPC?name=macd&fastperiod=5&slowperiod=35&signalperiod=5"
    doc, got = rows(lake, url)
    assert doc["indicators"][0]["columns"] == ["macd", "macd_signal", "macd_hist"]
    m, s, h = talib.MACD(column(bars_of(lake[0], "^GSPC"), "close"), 5, 35, 5)
    check(got, {"macd": m, "macd_signal": s, "macd_hist": h})


def test_names_list_json_and_csv(lake) -> None:
    doc, got = rows(lake, "/v1/indicators/%5EGSPC?names=sma:20,ema:50,rsi:14&limit=300")
    assert [i["columns"] for i in doc["indicators"]] == [["sma"], ["ema"], ["rsi"]]
    c = column(bars_of(lake[0], "^GSPC"), "close")
    for n, f in (("sma", talib.SMA(c, 20)), ("ema", talib.EMA(c, 50)), ("rsi", talib.RSI(c, 14))):
        assert np.array_equal(column(got, n), f[-300:]), n
    r = get(lake, "/v1/indicators/%5EGSPC?names=sma:20,ema:50,rsi:14&limit=300&format=csv")
    assert r.headers["Content-Type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert list(table[0]) == ["date", "close", "sma", "ema", "rsi"] and len(table) == 300
    assert [float(row["rsi"]) for row in table] == column(got, "rsi").tolist()


def test_window_does_not_change_the_values(lake) -> None:
    """Computed over the whole history, then cut: the first row of a window is warmed up."""
    _, full = rows(lake, "/v1/indicators/%5EGSPC?name=ema&timeperiod=200")
    _, part = rows(
        lake, "/v1/indicators/%5EGSPC?name=ema&timeperiod=200&start=2008-09-15&end=2008-12-31"
    )
    assert part["date"][0].as_py() == "2008-09-15" and part["date"][-1].as_py() == "2008-12-31"
    where = full["date"].to_pylist().index("2008-09-15")
    assert part["ema"].to_pylist() == full["ema"].to_pylist()[where : where + part.num_rows]
    assert part["ema"].null_count == 0


def test_weekly_and_total_return_bars(lake) -> None:
    app = lake[0]
    for interval in ("1wk", "1mo"):
        _, got = rows(
            lake, f"/v1/indicators/MSFT?name=rsi&timeperiod=5&interval={interval}&adjust=total"
        )
        bars = bars_of(app, "MSFT", "total", interval)
        check(got, {"rsi": talib.RSI(column(bars, "close"), 5)})
    _, wk = rows(lake, "/v1/indicators/%5EGSPC?name=bbands&interval=1wk")
    check(wk, ti.reference("bbands", ti.arrays(bars_of(app, "^GSPC", interval="1wk"))))


def test_gaps_in_the_history(lake) -> None:
    bars = bars_of(lake[0], "GAPPY")
    assert bars.num_rows < 4700
    for name in ("sma", "rsi", "atr", "vwap", "stoch"):
        _, got = rows(lake, f"/v1/indicators/GAPPY?name={name}")
        check(got, ti.reference(name, ti.arrays(bars)))


def test_split_inside_the_window(lake) -> None:
    """NVDA, 4:1 on 2021-07-20: on split-adjusted bars (the default) an SMA runs through the
    split; with adjust=none it sees the step. Each equals TA-Lib on the bars of that view."""
    url = "/v1/indicators/NVDA?name=sma&timeperiod=5&start=2021-07-01&end=2021-08-31"
    _, split = rows(lake, url)
    _, raw = rows(lake, url + "&adjust=none")
    for got, how in ((split, "split"), (raw, "none")):
        bars = bars_of(lake[0], "NVDA", how)
        sma = talib.SMA(column(bars, "close"), 5)
        dates = [d.isoformat() for d in bars["date"].to_pylist()]
        lo = dates.index("2021-07-01")
        assert column(got, "sma").tolist() == sma[lo : lo + got.num_rows].tolist()
    i = split["date"].to_pylist().index("2021-07-20")
    assert 0.9 < column(split, "close")[i] / column(split, "close")[i - 1] < 1.1
    assert 3.5 < column(raw, "close")[i - 1] / column(raw, "close")[i] < 4.5


# ------------------------------------------------------------------ statistics


def returns(app: App, symbol: str, start: str | None = None) -> pd.Series:
    bars = bars_of(app, symbol, "total")
    s = pd.Series(column(bars, "close"), index=pd.DatetimeIndex(bars["date"].to_pylist()))
    if start:
        s = s[start:]
    return s.pct_change().iloc[1:]


def near(a, b, rtol: float = RTOL) -> bool:
    return a is not None and math.isclose(a, float(b), rel_tol=rtol, abs_tol=1e-15)


def test_analytics_equal_empyrical_on_20_years(lake) -> None:
    doc = json.loads(get(lake, "/v1/analytics/%5EIXIC?risk_free=0.02").get_data())
    res = doc["results"][0]
    r, b = returns(lake[0], "^IXIC"), returns(lake[0], "^GSPC")
    rf = 1.02 ** (1 / 252) - 1
    assert res["periods_per_year"] == 252 and res["observations"] == 5030
    assert near(res["total_return"], ep.cum_returns_final(r))
    assert near(res["cagr"], ep.annual_return(r))
    assert near(res["volatility"], ep.annual_volatility(r))
    assert near(res["sharpe"], ep.sharpe_ratio(r, risk_free=rf))
    assert near(res["sortino"], ep.sortino_ratio(r, required_return=rf))
    assert near(res["max_drawdown"], ep.max_drawdown(r))
    assert near(res["calmar"], ep.calmar_ratio(r))
    assert res["max_drawdown_peak"] == "2000-03-10" and res["max_drawdown_trough"] == "2002-10-09"
    assert res["best_day_date"] == str(r.idxmax().date()) and near(res["best_day"], r.max())
    e_alpha, e_beta = ep.alpha_beta(r, b, risk_free=rf)
    bench = res["benchmark"]
    assert bench["symbol"] == "^GSPC"  # the default (BARLAKE_BENCHMARK_SYMBOL)
    assert near(bench["beta"], e_beta) and near(bench["alpha"], e_alpha)
    assert near(bench["correlation"], r.corr(b))


def test_analytics_window_and_rolling(lake) -> None:
    url = "/v1/analytics/NVDA?benchmark=MSFT&start=2021-03-01&window=21"
    doc = json.loads(get(lake, url).get_data())
    res = doc["results"][0]
    r, b = returns(lake[0], "NVDA", "2021-03-01"), returns(lake[0], "MSFT", "2021-03-01")
    assert res["start"] == "2021-03-01" and res["observations"] == len(r)
    assert near(res["sharpe"], ep.sharpe_ratio(r)) and near(res["max_drawdown"], ep.max_drawdown(r))
    assert near(res["benchmark"]["beta"], ep.beta(r, b))
    roll = res["rolling"]
    full_r, full_b = returns(lake[0], "NVDA"), returns(lake[0], "MSFT")
    want = ep.roll_annual_volatility(full_r, 21)
    assert roll["date"][0] == "2021-03-01"
    full = 0
    for d, v, beta in zip(roll["date"], roll["volatility"], roll["beta"], strict=True):
        if pd.Timestamp(d) not in want.index:  # fewer than 21 returns so far: null
            assert v is None and beta is None and full == 0
            continue
        full += 1
        assert near(v, want[d], 1e-9)
        assert near(beta, ep.beta(full_r[:d].iloc[-21:], full_b[:d].iloc[-21:]), 1e-9)
    assert full > 200


def test_several_symbols_and_the_correlation_matrix(lake) -> None:
    doc = json.loads(
        get(lake, "/v1/analytics?symbols=NVDA,MSFT,%5EGSPC&benchmark=%5EIXIC").get_data()
    )
    assert [x["symbol"] for x in doc["results"]] == ["NVDA", "MSFT", "^GSPC"]
    m = doc["correlation"]["matrix"]
    rn, rm = returns(lake[0], "NVDA"), returns(lake[0], "MSFT")
    assert m[0][0] == m[1][1] == 1.0 and near(m[0][1], rn.corr(rm)) and m[0][1] == m[1][0]
    assert m[0][2] is None  # no common dates: the S&P 500 series ends in 2018
    r = get(lake, "/v1/analytics?symbols=NVDA,MSFT&format=csv")
    table = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    assert [t["symbol"] for t in table] == ["NVDA", "MSFT"]
    assert near(float(table[0]["sharpe"]), ep.sharpe_ratio(rn))


# ------------------------------------------------------------------ errors, caching


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/v1/indicators/%5EGSPC?name=nosuch", "name"),
        ("/v1/indicators/%5EGSPC?name=sma&timeperiod=1", "timeperiod"),
        ("/v1/indicators/%5EGSPC?name=sma&timeperiod=x", "timeperiod"),
        ("/v1/indicators/%5EGSPC?name=sma&fastperiod=3", "fastperiod"),
        ("/v1/indicators/%5EGSPC?name=bbands&nbdevup=inf", "nbdevup"),
        ("/v1/indicators/%5EGSPC?names=sma:20&timeperiod=3", "timeperiod"),
        ("/v1/indicators/%5EGSPC?names=sma:20&name=rsi", "names"),
        ("/v1/indicators/%5EGSPC?names=sma:20,foo:3", "names"),
        ("/v1/indicators/%5EGSPC", "name"),
        ("/v1/indicators/%5EGSPC?name=rsi&format=parquet", "format"),
        ("/v1/indicators/%5EGSPC?name=rsi&bogus=1", "bogus"),
        ("/v1/indicators/%5EGSPC?name=rsi&start=2010-01-01&end=2009-01-01", "start"),
        ("/v1/analytics/%5EGSPC?risk_free=1.5", "risk_free"),
        ("/v1/analytics/%5EGSPC?risk_free=-1", "risk_free"),
        ("/v1/analytics/%5EGSPC?risk_free=abc", "risk_free"),
        ("/v1/analytics/%5EGSPC?window=1", "window"),
        ("/v1/analytics/%5EGSPC?benchmark=..", "benchmark"),
        ("/v1/analytics?symbols=", "symbols"),
        ("/v1/analytics", "symbols"),
    ],
)
def test_bad_input_is_a_400_naming_the_parameter(lake, url: str, parameter: str) -> None:
    err = json.loads(get(lake, url, 400).get_data())["error"]
    assert err["parameter"] == parameter, err


def test_not_found(lake) -> None:
    get(lake, "/v1/indicators/NOSUCH?name=rsi", 404)
    get(lake, "/v1/analytics/NOSUCH", 404)
    assert "NOSUCH" in get(lake, "/v1/analytics/%5EGSPC?benchmark=NOSUCH", 404).get_data(
        as_text=True
    )
    get(lake, "/v1/analytics?symbols=%5EGSPC,NOSUCH", 404)


def test_cached_under_the_generation_and_fresh_after_a_write(tmp_path: Path) -> None:
    app = build_embedded(settings(tmp_path / "lake", benchmark_symbol="^IXIC"))
    api = build_api(app=app)
    sp = arch_bars()
    store(app, "^GSPC", sp.slice(0, 3000))
    store(app, "^IXIC", arch_bars("nasdaq", "^IXIC"))
    client = Client(api)
    url = "/v1/indicators/%5EGSPC?name=rsi&limit=1"
    first = client.get(url)
    assert first.headers["X-Cache"] == "miss"
    again = client.get(url)
    assert again.headers["X-Cache"] == "hit-l1" and again.get_data() == first.get_data()
    etag = first.headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    stats = client.get("/v1/analytics/%5EGSPC")
    assert json.loads(stats.get_data())["results"][0]["benchmark"]["symbol"] == "^IXIC"
    store(app, "^GSPC", sp)  # a new daily generation: new ETag, new values
    after = client.get(url, headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["ETag"] != etag
    assert after.headers["X-Cache"] == "miss"
    last = json.loads(after.get_data())["rows"][0]
    assert last["date"] == "2018-12-31"
    assert last["rsi"] == talib.RSI(column(sp, "close"), 14)[-1]
    stats2 = client.get("/v1/analytics/%5EGSPC")
    assert stats2.headers["ETag"] != stats.headers["ETag"]
    assert json.loads(stats2.get_data())["results"][0]["end"] == "2018-12-31"
    store(app, "^IXIC", arch_bars("nasdaq", "^IXIC").slice(0, 4000))  # the benchmark changes
    stats3 = client.get("/v1/analytics/%5EGSPC", headers={"If-None-Match": stats2.headers["ETag"]})
    assert stats3.status_code == 200
    assert json.loads(stats3.get_data())["results"][0]["benchmark"]["observations"] == 3999


def test_crypto_is_annualised_by_365_days(tmp_path: Path) -> None:
    """A 24/7 symbol (BTC-USD: every calendar day) — its own statistics by 365, its beta and
    alpha against an exchange-listed benchmark over the common sessions, by 252."""
    app = build_embedded(settings(tmp_path / "lake"))
    sp = arch_bars()
    store(app, "^GSPC", sp)
    days = pd.date_range("2015-01-01", "2018-12-31", freq="D")
    closes = pd.Series(column(sp, "close"), index=pd.DatetimeIndex(sp["date"].to_pylist()))
    path = closes.reindex(days, method="ffill") * np.linspace(1.0, 1.5, len(days))
    n = len(days)
    btc = pa.table({
        "symbol": ["BTC-USD"] * n, "date": pa.array(days.date, pa.date32()),
        "open": path.to_numpy(), "high": path.to_numpy() * 1.01, "low": path.to_numpy() * 0.99,
        "close": path.to_numpy(), "adj_close": path.to_numpy(),
        "volume": pa.array([1] * n, pa.int64()),
    })  # fmt: skip
    store(app, "BTC-USD", btc)
    doc = json.loads(Client(build_api(app=app)).get("/v1/analytics/BTC-USD").get_data())
    res = doc["results"][0]
    r = path.pct_change().iloc[1:]
    assert res["periods_per_year"] == 365
    assert near(res["cagr"], ep.annual_return(r, annualization=365))
    assert near(res["volatility"], ep.annual_volatility(r, annualization=365))
    assert res["benchmark"]["periods_per_year"] == 252
    common = path[closes["2015":].index].pct_change().iloc[1:]
    bench = closes["2015":].pct_change().iloc[1:]
    assert near(res["benchmark"]["beta"], ep.beta(common, bench))
    assert near(res["benchmark"]["alpha"], ep.alpha(common, bench, annualization=252))


def test_index_lists_the_endpoints(lake) -> None:
    endpoints = json.loads(get(lake, "/").get_data())["endpoints"]
    assert "/v1/analytics/{symbol}" in endpoints


def test_dates_are_iso_in_both_bodies(lake) -> None:
    doc, _ = rows(lake, "/v1/indicators/MSFT?name=obv&limit=1")
    assert date.fromisoformat(doc["rows"][0]["date"])


def test_default_benchmark_absent_is_left_out(tmp_path: Path) -> None:
    """The default benchmark (^GSPC) not stored: statistics without a benchmark section; the
    same benchmark asked for by name: a 404 naming it."""
    app = build_embedded(settings(tmp_path / "lake"))
    store(app, "NVDA", *recorded(NVDA))
    client = Client(build_api(app=app))
    r = client.get("/v1/analytics/NVDA")
    assert r.status_code == 200
    res = json.loads(r.get_data())["results"][0]
    assert "benchmark" not in res and res["observations"] == 251
    assert client.get("/v1/analytics/NVDA?benchmark=%5EGSPC").status_code == 404
