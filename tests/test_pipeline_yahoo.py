"""The live code path end to end: the real yfinance library, fed recorded Yahoo HTTP answers,
through dispatch → ingest → weekly + profile. A split restated between two recordings is healed
exactly as with the replay provider."""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from barlake.adapters.yahoo_chart import load_chart
from barlake.adapters.yfinance_provider import YFinanceProvider
from barlake.config import Settings, build_embedded, run_embedded
from barlake.core.layout import period_name
from barlake.core.merge import bars_equal
from barlake.messages import IngestRequest
from conftest import FIXTURES
from yahoo_offline import OfflineYahoo

GOOG = FIXTURES / "restatements" / "GOOG_split_20for1_2022"
NAME = "chart-GOOG-2020-01-01-to-2020-01-03.json"
AAPL = FIXTURES / "chart_api" / "chart-AAPL-2020-08-31-to-2020-11-07.json"


@pytest.fixture(autouse=True)
def _quiet_yfinance() -> None:
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="yfinance")


def test_split_restated_between_two_yahoo_answers_is_healed(tmp_path: Path) -> None:
    yahoo = OfflineYahoo()
    yahoo.record("GOOG", GOOG / "recorded-2021-11-21" / NAME)
    yahoo.record("AAPL", AAPL)
    provider = YFinanceProvider(yahoo.session(), cache_dir=tmp_path / "yf")
    app = build_embedded(
        Settings.from_env({}, lake_dir=str(tmp_path / "lake")),
        provider=provider,
        clock=lambda: datetime(2026, 11, 21, 12, tzinfo=UTC),
    )
    first = run_embedded(
        app,
        IngestRequest(kind="manual", run_id="r1", symbols=("GOOG", "AAPL"), start=date(2020, 1, 1)),
    )
    assert {o.symbol: o.status for o in first.outcomes()} == {"AAPL": "ok", "GOOG": "ok"}
    assert app.read.bars("GOOG").table.column("close").to_pylist() == [1367.3699951171875]
    assert bars_equal(app.read.bars("AAPL").table, load_chart(AAPL).bars)
    actions = [(a["date"], a["kind"], a["value"]) for a in app.read.actions("AAPL").to_pylist()]
    assert actions == [(date(2020, 8, 31), "split", 4.0), (date(2020, 11, 6), "dividend", 0.205)]
    assert app.derived.stat(period_name("AAPL", "1wk")) is not None

    yahoo.record("GOOG", GOOG / "recorded-2025-02-20" / NAME)  # Yahoo after the 2022 split
    second = run_embedded(app, IngestRequest(kind="manual", run_id="r2", symbols=("GOOG", "AAPL")))
    outcomes = {o.symbol: o for o in second.outcomes()}
    assert outcomes["AAPL"].status == "unchanged"
    assert outcomes["GOOG"].status == "restated"
    assert outcomes["GOOG"].restatement["evidence"]["split"] == "20:1"
    assert bars_equal(
        app.read.bars("GOOG").table, load_chart(GOOG / "recorded-2025-02-20" / NAME).bars
    )
    assert app.read.bars("GOOG").table.column("volume").to_pylist() == [28_132_000]
