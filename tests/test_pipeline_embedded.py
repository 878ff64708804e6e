"""The whole flow in embedded mode: request → dispatch → ingest → finalize → weekly + profile.

Restatements are replayed from real Yahoo recordings of the same ticker at two or three dates:
after the last run the stored history must equal the latest recording.
"""

from __future__ import annotations

import shutil
import threading
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from barlake.adapters.replay_provider import ReplayProvider
from barlake.adapters.yahoo_chart import load_chart
from barlake.config import App, Settings, build_embedded, run_embedded
from barlake.core.codec import decode_periods, encode_daily
from barlake.core.layout import daily_name, period_name, profile_name
from barlake.core.merge import bars_equal
from barlake.messages import RAW_OBJECT_FINALIZED, IngestBatch, IngestRequest, ObjectFinalized
from barlake.ports import RunStatus
from barlake.services.ingest import IngestService
from conftest import FIXTURES

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
REST = FIXTURES / "restatements"
CHART = FIXTURES / "chart_api"


def make_app(tmp_path: Path, replay: Path, **settings: str) -> tuple[App, ReplayProvider]:
    provider = ReplayProvider(replay)
    app = build_embedded(
        Settings.from_env({}, lake_dir=str(tmp_path / "lake"), **settings),
        provider=provider,
        clock=lambda: NOW,
    )
    return app, provider


def recordings(tmp_path: Path, stages: list[dict[str, Path]]) -> Path:
    root = tmp_path / "replay"
    for i, files in enumerate(stages, 1):
        folder = root / f"{i}"
        folder.mkdir(parents=True)
        for name, src in files.items():
            shutil.copy(src, folder / name)
    return root


_runs = iter(range(10**6))


def ingest(app: App, *symbols: str, **kw: object) -> RunStatus:
    request = IngestRequest(kind="manual", run_id=f"run-{next(_runs)}", symbols=symbols, **kw)  # type: ignore[arg-type]
    return run_embedded(app, request)


def outcome(status: RunStatus, symbol: str) -> object:
    return next(o for o in status.outcomes() if o.symbol == symbol)


def stored(app: App, symbol: str) -> pa.Table:
    return app.read.bars(symbol).table


def recorded(path: Path) -> pa.Table:
    return load_chart(path).bars


# ------------------------------------------------------------------ restatements healed


@pytest.mark.parametrize("ticker", ["GOOG", "AMZN"])
def test_20_for_1_split_is_healed(tmp_path: Path, ticker: str) -> None:
    name = f"chart-{ticker}-2020-01-01-to-2020-01-03.json"
    folder = REST / f"{ticker}_split_20for1_2022"
    app, provider = make_app(
        tmp_path,
        recordings(
            tmp_path,
            [
                {f"{ticker}.json": folder / "recorded-2021-11-21" / name},
                {f"{ticker}.json": folder / "recorded-2025-02-20" / name},
            ],
        ),
    )
    first = ingest(app, ticker)
    assert outcome(first, ticker).status == "ok"
    assert stored(app, ticker).column("close").to_pylist() == pytest.approx(
        [1367.37 if ticker == "GOOG" else 1898.01], rel=1e-6
    )
    provider.advance()
    second = ingest(app, ticker)
    o = outcome(second, ticker)
    assert o.status == "restated" and o.restatement["evidence"]["split"] == "20:1"
    assert bars_equal(stored(app, ticker), recorded(folder / "recorded-2025-02-20" / name))
    [restatement] = app.state.restatements(ticker)
    assert restatement.kinds[0] == "split" and restatement.run_id == second.run.run_id


def test_aapl_adj_close_restatement_is_healed(tmp_path: Path) -> None:
    name = "chart-AAPL-2020-08-31-to-2020-11-07.json"
    folder = REST / "AAPL_adjclose_2020-08-31_to_2020-11-07"
    app, provider = make_app(
        tmp_path,
        recordings(
            tmp_path,
            [
                {"AAPL.json": folder / "recorded-2021-11-22" / name},
                {"AAPL.json": folder / "recorded-2025-02-20" / name},
            ],
        ),
    )
    ingest(app, "AAPL")
    assert stored(app, "AAPL").num_rows == 49
    provider.advance()
    o = outcome(ingest(app, "AAPL"), "AAPL")
    assert o.status == "restated" and o.restatement["kinds"] == ["dividend"]
    assert bars_equal(stored(app, "AAPL"), recorded(folder / "recorded-2025-02-20" / name))
    # The restatement needed the full history: a second fetch from the first stored day.
    assert provider.calls[-1][1] == date(2020, 8, 31)
    actions = app.read.actions("AAPL").to_pylist()
    assert [(a["date"], a["kind"], a["value"]) for a in actions] == [
        (date(2020, 8, 31), "split", 4.0),
        (date(2020, 11, 6), "dividend", 0.205),
    ]


def test_msft_intraday_bar_then_dividend_and_volume_revision(tmp_path: Path) -> None:
    folder = REST / "MSFT_dividend_2025-08-21"
    f = "history_chart_MSFT.json"
    app, provider = make_app(
        tmp_path,
        recordings(
            tmp_path,
            [
                {"MSFT.json": folder / "recorded-2025-08-15T17-35Z_intraday" / f},
                {"MSFT.json": folder / "recorded-2025-08-15_after-close" / f},
                {"MSFT.json": folder / "recorded-2025-08-25_after-close" / f},
            ],
        ),
    )
    o = outcome(ingest(app, "MSFT"), "MSFT")
    # The in-progress bar of 2025-08-15 (17:35Z, before the 20:00Z close) is set aside.
    assert o.provisional_skipped == 1 and o.rows_written == 124
    assert stored(app, "MSFT").column("date")[-1].as_py() == date(2025, 8, 14)

    provider.advance()
    o = outcome(ingest(app, "MSFT"), "MSFT")
    # Between the two recordings Yahoo also revised the volume of 2025-08-14: a revision the
    # overlap heals in place, without refetching the history.
    assert o.status == "restated" and o.rows_new == 1
    assert o.restatement["kinds"] == ["volume_revision"]
    assert o.restatement["evidence"]["volume_changes"] == [
        {"date": "2025-08-14", "stored": 20_254_000, "fetched": 20_269_100}
    ]
    assert len(provider.calls) == 2  # no full refetch for a volume revision
    last = stored(app, "MSFT").to_pylist()[-1]
    assert (last["date"], last["close"], last["volume"]) == (
        date(2025, 8, 15),
        pytest.approx(520.17),
        25_191_800,
    )

    provider.advance()
    # The third recording is a six-month window starting 2025-02-26, after the stored
    # 2025-02-18: a suspect answer (Yahoo cuts histories short when throttling). Nothing is
    # applied, the evidence is recorded and the symbol is retried.
    before = stored(app, "MSFT")
    status = ingest(app, "MSFT")
    o = outcome(status, "MSFT")
    assert (o.status, o.error_kind) == ("failed", "transient") and not status.complete
    assert "suspect answer, nothing applied: the answer starts at 2025-02-26" in o.error
    assert bars_equal(stored(app, "MSFT"), before)
    suspect = app.state.get_audits(["MSFT"])["MSFT"].suspect
    assert suspect["answer_first"] == "2025-02-26" and suspect["purged"] == 6
    # The next run gets the same start: the provider purged those days. The answer is applied
    # over its span and the six older stored days stay, rescaled by the dividend factor.
    o = outcome(ingest(app, "MSFT"), "MSFT")
    assert o.status == "restated"
    assert o.restatement["kinds"] == ["dividend", "volume_revision", "provider_purge"]
    latest = recorded(folder / "recorded-2025-08-25_after-close" / f)
    now = stored(app, "MSFT")
    assert bars_equal(now.slice(6), latest)
    older = now.slice(0, 6).to_pylist()
    assert [r["date"] for r in older] == before.column("date").to_pylist()[:6]
    factor = latest["adj_close"][0].as_py() / before["adj_close"][6].as_py()
    for kept, old in zip(older, before.slice(0, 6).to_pylist(), strict=True):
        assert kept["close"] == old["close"] and kept["volume"] == old["volume"]
        assert kept["adj_close"] == pytest.approx(old["adj_close"] * factor, rel=1e-9)
    record = app.state.get_audits(["MSFT"])["MSFT"]
    assert record.purged_before == date(2025, 2, 26) and record.suspect is None
    row = (
        stored(app, "MSFT")
        .filter(pc.equal(pc.field("date"), pa.scalar(date(2025, 8, 15))))
        .to_pylist()[0]
    )
    assert row["volume"] == 25_213_300


def test_nvda_4_for_1_split_is_healed(tmp_path: Path) -> None:
    """The NVDA recording is already split-adjusted; the view Yahoo gave before the split of
    2021-07-20 is rebuilt from it (prices ×4, volume ÷4, up to 2021-07-19)."""
    real = recorded(CHART / "historical-via-chart-NVDA-split-2021-02-01-to-2022-01-31.csv.json")
    before = real.filter(pc.less(real["date"], pa.scalar(date(2021, 7, 20))))
    volumes = before["volume"].to_pylist()
    assert all(v % 4 == 0 for v in volumes)  # Yahoo multiplied them by 4: the division is exact
    pre_split = pa.table(
        {
            "symbol": before["symbol"],
            "date": before["date"],
            **{
                c: pc.multiply(before[c], 4.0)
                for c in ("open", "high", "low", "close", "adj_close")
            },
            "volume": pa.array([v // 4 for v in volumes], pa.int64()),
        }
    )
    root = tmp_path / "replay"
    (root / "1").mkdir(parents=True)
    (root / "2").mkdir()
    (root / "1" / "NVDA.parquet").write_bytes(
        encode_daily(
            pre_split,
            load_chart(
                CHART / "historical-via-chart-NVDA-split-2021-02-01-to-2022-01-31.csv.json"
            ).actions.slice(0, 0),
        )
    )
    shutil.copy(
        CHART / "historical-via-chart-NVDA-split-2021-02-01-to-2022-01-31.csv.json",
        root / "2" / "NVDA.json",
    )
    app, provider = make_app(tmp_path, root)
    ingest(app, "NVDA")
    assert stored(app, "NVDA").num_rows == before.num_rows
    provider.advance()
    o = outcome(ingest(app, "NVDA"), "NVDA")
    assert o.status == "restated" and o.restatement["evidence"]["split"] == "4:1"
    assert bars_equal(stored(app, "NVDA"), real)
    assert stored(app, "NVDA").num_rows == 252


# ------------------------------------------------------------------ events, duplicates, races


def msft_app(tmp_path: Path) -> App:
    src = (
        REST
        / "MSFT_dividend_2025-08-21"
        / "recorded-2025-08-15_after-close"
        / "history_chart_MSFT.json"
    )
    app, _ = make_app(tmp_path, recordings(tmp_path, [{"MSFT.json": src}]))
    return app


def test_weekly_monthly_and_profile_follow_each_write(tmp_path: Path) -> None:
    app = msft_app(tmp_path)
    ingest(app, "MSFT")
    raw = app.raw.stat(daily_name("MSFT"))
    weekly = app.derived.read(period_name("MSFT", "1wk"))
    assert raw is not None and weekly is not None
    assert weekly.info.metadata["source_generation"] == str(raw.generation)
    weeks = decode_periods(weekly.data)
    assert weeks.column("date").to_pylist()[-1] == date(2025, 8, 11)
    assert sum(weeks.column("volume").to_pylist()) == sum(
        stored(app, "MSFT").column("volume").to_pylist()
    )
    assert app.derived.stat(period_name("MSFT", "1mo")) is not None
    profile = app.state.get_profile("MSFT")
    assert profile is not None and profile["generation"] == raw.generation
    assert profile["last_date"] == "2025-08-15" and profile["gap_count"] == 0
    assert app.derived.stat(profile_name("MSFT")) is not None


def test_duplicate_delivery_makes_no_new_generation_and_no_event(tmp_path: Path) -> None:
    app = msft_app(tmp_path)
    ingest(app, "MSFT")
    gen = app.raw.stat(daily_name("MSFT")).generation
    events_before = sum(e.topic == RAW_OBJECT_FINALIZED for e in app.bus.published)
    weekly_gen = app.derived.stat(period_name("MSFT", "1wk")).generation
    for _ in range(3):
        o = outcome(ingest(app, "MSFT"), "MSFT")
        assert o.status == "unchanged" and o.generation == gen
    assert app.raw.stat(daily_name("MSFT")).generation == gen
    assert sum(e.topic == RAW_OBJECT_FINALIZED for e in app.bus.published) == events_before
    assert app.derived.stat(period_name("MSFT", "1wk")).generation == weekly_gen


def test_stale_and_duplicate_finalize_events_do_nothing(tmp_path: Path) -> None:
    app = msft_app(tmp_path)
    ingest(app, "MSFT")
    current = app.raw.stat(daily_name("MSFT"))
    weekly = app.derived.stat(period_name("MSFT", "1wk"))
    stale = ObjectFinalized(app.raw.bucket, daily_name("MSFT"), current.generation - 1)
    assert app.weekly.handle(stale) == "stale"
    assert app.profile.handle(stale) == "stale"
    same = ObjectFinalized(app.raw.bucket, daily_name("MSFT"), current.generation)
    assert app.weekly.handle(same) == "duplicate"
    assert app.profile.handle(same) == "duplicate"
    assert app.derived.stat(period_name("MSFT", "1wk")).generation == weekly.generation
    other = ObjectFinalized(app.raw.bucket, "weekly/MSFT.parquet", current.generation)
    assert app.weekly.handle(other) == "stale"


def test_concurrent_ingests_of_one_symbol_lose_no_day(tmp_path: Path) -> None:
    """8 writers, each with 3 disjoint new days for the same symbol, race on one object."""
    src = recorded(
        REST
        / "MSFT_dividend_2025-08-21"
        / "recorded-2025-08-15_after-close"
        / "history_chart_MSFT.json"
    )
    assert src.num_rows == 125
    base, new = src.slice(0, 101), src.slice(101)  # 24 new days: 3 for each of 8 writers
    app = msft_app(tmp_path)
    app.raw.write(
        daily_name("MSFT"),
        encode_daily(
            base,
            load_chart(
                REST
                / "MSFT_dividend_2025-08-21"
                / "recorded-2025-08-15_after-close"
                / "history_chart_MSFT.json"
            ).actions.slice(0, 0),
        ),
        if_generation_match=0,
    )

    class Slice:
        name = "slice"

        def __init__(self, rows: pa.Table) -> None:
            self.rows = rows

        def fetch(self, symbols, start, end):
            from barlake.ports import FetchResult

            return {s: FetchResult(s, bars=self.rows, actions=None, as_of=NOW) for s in symbols}

    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        service = IngestService(
            app.raw, app.state, Slice(new.slice(i * 3, 3)), lambda: NOW, overlap_sessions=1
        )
        barrier.wait()
        try:
            service.handle(IngestBatch("race", f"race-{i}", ("MSFT",)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert bars_equal(stored(app, "MSFT"), src)


# ------------------------------------------------------------------ bad input and failures


def test_bad_provider_rows_are_quarantined_with_reasons(tmp_path: Path) -> None:
    root = tmp_path / "replay"
    root.mkdir()
    (root / "BAD.csv").write_text(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-03-04,10,11,9,10.5,10.5,100\n"
        "2024-03-05,10,11,9,,10.5,100\n"  # missing close
        "2024-03-06,10,9,9.5,10,10,100\n"  # high below open/close
        "2024-03-07,-1,11,-2,10,10,100\n"  # negative price
        "2024-03-08,10,11,9,10,10,-5\n"  # negative volume
        "2024-03-09,10,10,10,10,10,0\n"  # a Saturday placeholder
        "2024-03-11,10,11,9,10,10,100\n"
        "2024-03-11,10,12,9,11,11,100\n"  # the same date twice, different values
        "2024-03-12,nan,11,9,10,10,100\n"  # NaN
        "2024-03-13,10,11,9,10,10,100\n"
        "2030-01-02,10,11,9,10,10,100\n"  # future
    )
    app, _ = make_app(tmp_path, root)
    o = outcome(ingest(app, "BAD"), "BAD")
    assert o.status == "ok" and o.rows_written == 2 and o.rows_quarantined == 9
    assert stored(app, "BAD").column("date").to_pylist() == [date(2024, 3, 4), date(2024, 3, 13)]
    reasons = sorted((q.date.isoformat(), q.reason) for q in app.state.quarantine("BAD"))
    assert reasons == [
        ("2024-03-05", "missing_value"),
        ("2024-03-06", "high_below_open_close"),
        ("2024-03-07", "non_positive_price"),
        ("2024-03-08", "negative_volume"),
        ("2024-03-09", "holiday_placeholder"),
        ("2024-03-11", "duplicate_date"),  # both copies are kept: their values differ
        ("2024-03-11", "duplicate_date"),
        ("2024-03-12", "not_finite"),
        ("2030-01-02", "future_date"),
    ]
    assert app.state.get_profile("BAD")["quarantined"] == 9


@pytest.mark.parametrize(
    ("file", "symbol", "kind"),
    [
        ("historical-via-chart-SIX-2020-01-01-to-2020-01-03.json", "SIX", "not_found"),
        ("chart-BFLY-2020-01-01-to-2020-01-03.json", "BFLY", "no_data"),
        ("chart-APS.AX-2020-01-01-to-2020-01-03.json", "APS.AX", "no_data"),
    ],
)
def test_provider_errors_are_recorded_not_retried(
    tmp_path: Path, file: str, symbol: str, kind: str
) -> None:
    root = tmp_path / "replay"
    root.mkdir()
    shutil.copy(FIXTURES / "chart_api_errors" / file, root / f"{symbol}.json")
    app, provider = make_app(tmp_path, root)
    status = ingest(app, symbol)
    o = outcome(status, symbol)
    assert o.status == "failed" and o.error_kind == kind and o.error
    assert status.complete and len(provider.calls) == 1
    assert app.raw.stat(daily_name(symbol)) is None


def test_dispatch_batches_and_redelivered_request_is_one_run(tmp_path: Path) -> None:
    root = tmp_path / "replay"
    root.mkdir()
    for s in ("AAA", "BBB", "CCC", "DDD", "EEE"):
        (root / f"{s}.csv").write_text(
            "Date,Open,High,Low,Close,Adj Close,Volume\n2024-03-04,10,11,9,10,10,100\n"
        )
    app, provider = make_app(tmp_path, root, batch_size="2")
    request = IngestRequest(
        kind="backfill", run_id="bf-1", symbols=("EEE", "AAA", "CCC", "BBB", "DDD")
    )
    status = run_embedded(app, request)
    assert status.run.batch_ids == ("bf-1-b00000", "bf-1-b00001", "bf-1-b00002")
    assert [b.outcomes[0].symbol for b in status.batches] == ["AAA", "CCC", "EEE"]
    assert status.complete and len(provider.calls) == 3
    again = run_embedded(app, request)  # redelivered: nothing left to send
    assert len(provider.calls) == 3 and again.run == status.run
    assert [r.symbol for r in app.state.list_symbols()] == ["AAA", "BBB", "CCC", "DDD", "EEE"]
    # A scheduled tick with no symbols covers the registry's default universe.
    tick = run_embedded(app, IngestRequest(kind="scheduled", run_id="tick-1"))
    assert tick.run.symbols == 5 and tick.complete
