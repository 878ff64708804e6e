"""Yahoo at scale (issue #11), end to end through the embedded pipeline and the real yfinance
library, against the simulated Yahoo (barlake.yahoo_sim): the pacer keeps a rate-limited Yahoo
from answering 429, the daily update takes its bars from quotes (one request per 100 symbols)
and sends chart requests only where needed, timezones come with the quotes (no per-symbol
probe on a cold instance), and a blocked Yahoo is an outage — retried, nothing recorded as
delisted, the run incomplete — not a mass delisting."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from barlake.adapters.memory_pacer import MemoryPacer
from barlake.adapters.yfinance_provider import YFinanceProvider
from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.core.layout import daily_name
from barlake.core.pacing import Budget
from barlake.messages import IngestRequest
from barlake.yahoo_sim import SimTransport, SimulatedYahoo, utc_close

DAY1, DAY2 = date(2025, 6, 12), date(2025, 6, 13)
SYMBOLS = tuple(f"S{i:02d}" for i in range(12))


@pytest.fixture(autouse=True)
def _quiet_yfinance() -> None:
    warnings.filterwarnings("ignore", module="yfinance")


def lake(
    tmp_path: Path, sim: SimulatedYahoo, pacer: Any = None, **settings: str
) -> tuple[App, YFinanceProvider]:
    provider = YFinanceProvider(
        SimTransport(sim).session(),
        cache_dir=tmp_path / "yf",
        pacer=pacer,
        concurrency=4,
        clock=lambda: utc_close(sim),
        seed_timezones=True,
    )
    app = build_embedded(
        Settings.from_env({}, lake_dir=str(tmp_path / "lake"), **settings),
        provider=provider,
        clock=lambda: utc_close(sim),
    )
    return app, provider


def run(app: App, run_id: str, symbols: tuple[str, ...] = SYMBOLS, **kw: Any) -> Any:
    return run_embedded(app, IngestRequest(kind="manual", run_id=run_id, symbols=symbols, **kw))


def first_load(tmp_path: Path, sim: SimulatedYahoo, **settings: str) -> App:
    app, _ = lake(tmp_path, sim, **settings)
    status = run(app, "load", start=date(2025, 5, 1))
    assert status.complete and {o.status for o in status.outcomes()} == {"ok"}
    # a cold first load: one quote request taught every timezone, no per-symbol probe
    assert sim.stats["tz_probe"] == 0 and sim.stats["quote"] == 1
    assert sim.stats["chart"] == len(SYMBOLS)
    return app


def test_pacing_keeps_a_rate_limited_yahoo_from_answering_429(tmp_path: Path) -> None:
    # Yahoo allows 10 API requests per second here; 24 symbols need 24 charts + the crumb.
    symbols = tuple(f"P{i:02d}" for i in range(24))
    unpaced = SimulatedYahoo(today=DAY1, limit=10, window_s=1.0)
    app, _ = lake(tmp_path / "unpaced", unpaced)
    run(app, "r", symbols, start=date(2025, 5, 1))
    assert unpaced.stats["rate_limited"] > 0  # without pacing, Yahoo says 429

    paced = SimulatedYahoo(today=DAY1, limit=10, window_s=1.0)
    pacer = MemoryPacer({"yahoo": Budget(9)}, jitter_s=0.02)
    app, _ = lake(tmp_path / "paced", paced, pacer=pacer)
    status = run(app, "r", symbols, start=date(2025, 5, 1))
    assert status.complete and {o.status for o in status.outcomes()} == {"ok"}
    assert paced.stats["rate_limited"] == 0
    assert paced.max_in_window() <= 10
    assert pacer.granted == paced.stats["api"]  # every API request was paced
    assert pacer.waited_s > 1.5  # ~25 requests at 9/s


def test_the_daily_update_takes_quotes_and_charts_only_where_needed(tmp_path: Path) -> None:
    sim = SimulatedYahoo(today=DAY1)
    app = first_load(tmp_path, sim)
    sim.today = DAY2
    sim.split("S03", DAY2, 2.0)  # the quote's previous close is restated: needs the chart
    before = dict(sim.stats)
    status = run(app, "daily")
    spent = {k: sim.stats[k] - before.get(k, 0) for k in sim.stats}
    assert status.complete
    outcomes = {o.symbol: o for o in status.outcomes()}
    assert outcomes["S03"].status == "restated"
    assert {o.status for s, o in outcomes.items() if s != "S03"} == {"ok"}
    # one quote request for all 12, charts only for S03 (incremental + full refetch)
    assert spent["quote"] == 1
    assert spent.get("chart", 0) == 2
    # the lake holds exactly what a chart fetch of the whole history gives today
    for symbol in ("S00", "S07", "S03"):
        got = app.read.bars(symbol).table
        want = sim.bars(symbol)
        assert got.column("date").to_pylist()[-1] == DAY2
        assert got.column("close").to_pylist()[-3:] == want["close"][-3:]
        assert got.column("volume").to_pylist()[-1] == want["volume"][-1]


def test_quotes_off_is_one_chart_request_per_symbol(tmp_path: Path) -> None:
    sim = SimulatedYahoo(today=DAY1)
    app = first_load(tmp_path, sim, yahoo_quotes="off")
    sim.today = DAY2
    before = dict(sim.stats)
    assert run(app, "daily").complete
    assert sim.stats["chart"] - before["chart"] == len(SYMBOLS)
    assert sim.stats["quote"] == before["quote"]  # timezones are cached: nothing to seed


def test_a_cold_instance_learns_timezones_from_the_quotes(tmp_path: Path) -> None:
    """yfinance probes each symbol's timezone (a chart request with range=1d) unless cached;
    a cold instance would send two requests per symbol. The quote seeds the cache."""
    sim = SimulatedYahoo(today=DAY1)
    first_load(tmp_path, sim)
    sim.today = DAY2
    sim.split("S05", DAY2, 3.0)  # one symbol that needs the chart, on a cold instance
    cold, provider = lake(tmp_path, sim)  # same lake, a fresh yfinance cache folder
    provider.cache_dir = tmp_path / "yf-cold"
    probes = sim.stats["tz_probe"]
    assert run(cold, "daily").complete
    assert sim.stats["tz_probe"] == probes


def _registry(app: App) -> list[tuple[str, bool]]:
    return [(r.symbol, r.active) for r in app.state.list_symbols(active_only=False)]


@pytest.mark.parametrize("quotes", ["on", "off"])
def test_a_block_storm_is_an_outage_not_delistings(tmp_path: Path, quotes: str) -> None:
    sim = SimulatedYahoo(today=DAY1)
    app = first_load(tmp_path, sim, yahoo_quotes=quotes)
    registry = _registry(app)
    generations = {s: app.raw.stat(daily_name(s)).generation for s in SYMBOLS}
    sim.today, sim.blocked = DAY2, True
    charts = sim.stats["chart"]
    status = run(app, "storm")
    assert not status.complete
    kinds = {o.error_kind for o in status.outcomes()}
    assert kinds == {"outage"}
    assert "provider outage: 12 of 12 previously active symbols" in status.outcomes()[0].error
    assert _registry(app) == registry
    assert {s: app.raw.stat(daily_name(s)).generation for s in SYMBOLS} == generations
    if quotes == "on":  # the quotes said it first: no chart request spent on the storm
        assert sim.stats["chart"] == charts
    sim.blocked = False  # the block lifts: the redelivered run completes
    status = run(app, "storm")
    assert status.complete
    assert {o.status for o in status.outcomes()} == {"ok"}
    assert app.read.bars("S00").table.column("date").to_pylist()[-1] == DAY2


def test_a_few_real_delistings_are_recorded_as_such(tmp_path: Path) -> None:
    sim = SimulatedYahoo(today=DAY1)
    app = first_load(tmp_path, sim)
    sim.today = DAY2
    sim.delisted = {"S01", "S02"}  # 2 of 12: below the outage share
    status = run(app, "daily")
    assert status.complete
    failed = {o.symbol: o.error_kind for o in status.outcomes() if o.status == "failed"}
    assert failed == {"S01": "not_found", "S02": "not_found"}


def test_barlake_run_ends_with_exit_3_naming_the_outage(tmp_path: Path) -> None:
    """The CLI against the simulated Yahoo over HTTP (BARLAKE_PROVIDER=yahoo-sim:URL): a block
    storm ends `barlake run` with exit code 3 and one line; the next run, unblocked, completes."""
    import os
    import subprocess
    import sys

    from barlake.yahoo_sim import SimServer

    sim = SimulatedYahoo(today=DAY1)
    server = SimServer(sim)
    env = {
        **os.environ,
        "COLUMNS": "200",
        "BARLAKE_PROVIDER": f"yahoo-sim:{server.url}",
        "BARLAKE_LAKE_DIR": str(tmp_path / "lake"),
        "BARLAKE_PACER_JITTER_MS": "0",
    }
    symbols = [f"C{i}" for i in range(6)]

    def barlake(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "barlake.cli", "run", *symbols, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    try:
        first = barlake("--start", "2025-05-01")
        assert first.returncode == 0, first.stderr
        sim.today, sim.blocked = DAY2, True
        storm = barlake()
        assert storm.returncode == 3, storm.stderr
        lines = [line for line in storm.stderr.splitlines() if line.strip()]
        assert lines == [
            "barlake: error: Yahoo Finance (simulated) cannot be reached: provider outage: 6 of "
            "6 previously active symbols answered not found / no data at once (quotes); retried "
            "later, none marked delisted; the registry is unchanged and run "
            + lines[0].split(" and run ")[1].split(" ")[0]
            + " incomplete, run it again later"
        ]
        sim.blocked = False
        after = barlake()
        assert after.returncode == 0, after.stderr
        assert sim.stats["quote"] >= 2
    finally:
        server.stop()


def test_a_symbol_is_delisted_after_not_found_on_three_days_while_others_succeed(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from barlake.cli import app as cli
    from barlake.services.lifecycle import LifecycleService

    sim = SimulatedYahoo(today=DAY1)
    app = first_load(tmp_path, sim)
    lifecycle: LifecycleService = app.ingest.lifecycle
    sim.delisted = {"S01"}
    days = [DAY2, date(2025, 6, 16), date(2025, 6, 17)]
    for n, day in enumerate(days, 1):
        sim.today = day
        status = run(app, f"day{n}")
        assert status.complete
        doc = lifecycle.get("S01")
        assert doc is not None and doc["not_found_days"] == [d.isoformat() for d in days[:n]]
        assert doc["status"] == ("delisted" if n == 3 else "suspect")
    registry = {r.symbol: r for r in app.state.list_symbols(active_only=False)}
    assert not registry["S01"].active and "delisted" in registry["S01"].tags
    assert all(r.active for s, r in registry.items() if s != "S01")
    assert app.read.bars("S01").table.num_rows > 0  # the data is kept
    # the next scheduled run (the registry's universe) leaves it out of the fan-out
    sim.today = date(2025, 6, 18)
    scheduled = run_embedded(app, IngestRequest(kind="scheduled", run_id="sched"))
    assert scheduled.complete
    assert {o.symbol for o in scheduled.outcomes()} == set(SYMBOLS) - {"S01"}
    from werkzeug.test import Client

    from barlake.api.app import build_api

    answer = Client(build_api(app=app)).get("/v1/symbols")  # type: ignore[arg-type]
    assert answer.status_code == 200
    inventory = {e["symbol"]: e["delisted"] for e in answer.get_json()["symbols"]}
    assert inventory["S01"] is True and inventory["S00"] is False
    listed = CliRunner().invoke(cli, ["delisted", "--lake", app.settings.lake_dir])
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if "S01" in line)
    assert "delisted" in row and "2025-06-17" in row


def test_outage_days_are_no_evidence_of_delisting(tmp_path: Path) -> None:
    sim = SimulatedYahoo(today=DAY1)
    app = first_load(tmp_path, sim)
    sim.blocked = True
    for n, day in enumerate([DAY2, date(2025, 6, 16), date(2025, 6, 17)], 1):
        sim.today = day
        assert not run(app, f"storm{n}").complete
    assert all(app.ingest.lifecycle.get(s) is None for s in SYMBOLS)
    assert all(r.active for r in app.state.list_symbols(active_only=False))
