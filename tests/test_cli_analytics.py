"""`barlake indicators` and `barlake analytics`, run as a user runs them (a real subprocess),
on a lake holding 20 years of S&P 500 / NASDAQ bars and the NVDA/MSFT Yahoo recordings: the
csv/json answers are the API's, the numbers TA-Lib's and empyrical's."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import empyrical as ep
import numpy as np
import pytest
import talib

from analytics_data import MSFT, NVDA, arch_bars, column, recorded
from apilake import settings
from barlake.config import build_embedded
from test_api_analytics import returns, store
from test_config_cli import barlake


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli-analytics") / "lake"
    app = build_embedded(settings(folder))
    store(app, "^GSPC", arch_bars())
    store(app, "^IXIC", arch_bars("nasdaq", "^IXIC"))
    for path, symbol in ((NVDA, "NVDA"), (MSFT, "MSFT")):
        store(app, symbol, *recorded(path))
    return folder


def run(lake: Path, *args: str, code: int = 0) -> str:
    proc = barlake(*args, "--lake", str(lake), cwd=lake.parent)
    assert proc.returncode == code, proc.stderr
    return proc.stdout if code == 0 else proc.stderr


def test_indicators_table_csv_and_json(lake: Path) -> None:
    text = run(lake, "indicators", "^GSPC", "--name", "macd", "fastperiod=5", "--limit", "3")
    assert "macd_signal" in text and "2018-12-31" in text and "fastperiod=5" in text
    body = run(
        lake,
        "indicators",
        "^GSPC",
        "-n",
        "sma:20",
        "-n",
        "rsi:14",
        "--limit",
        "0",
        "--format",
        "csv",
    )
    rows = list(csv.DictReader(io.StringIO(body)))
    assert len(rows) == 5031 and list(rows[0]) == ["date", "close", "sma", "rsi"]
    close = column(arch_bars(), "close")
    assert rows[0]["rsi"] == "" and rows[13]["rsi"] == ""  # warm-up: empty, not 0
    assert [float(r["rsi"]) for r in rows[14:]] == talib.RSI(close, 14)[14:].tolist()
    doc = json.loads(run(lake, "indicators", "NVDA", "--name", "bbands", "--format", "json"))
    assert doc["indicators"][0]["columns"][-2:] == ["bb_percent_b", "bb_width"]


def test_analytics_table_and_csv(lake: Path) -> None:
    text = run(lake, "analytics", "^IXIC", "NVDA", "MSFT")
    assert "max_drawdown_peak" in text and "correlation of daily returns" in text
    body = run(
        lake, "analytics", "NVDA", "--benchmark", "MSFT", "--risk-free", "0.03", "--format", "csv"
    )
    (row,) = list(csv.DictReader(io.StringIO(body)))
    r = returns(_app(lake), "NVDA")
    rf = 1.03 ** (1 / 252) - 1
    assert np.isclose(float(row["sharpe"]), ep.sharpe_ratio(r, risk_free=rf), rtol=1e-9)
    assert row["benchmark"] == "MSFT"
    doc = json.loads(run(lake, "analytics", "NVDA", "--window", "63", "--format", "json"))
    assert len(doc["results"][0]["rolling"]["date"]) == 252


def _app(lake: Path):
    return build_embedded(settings(lake))


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("indicators", "^GSPC", "--name", "sma", "fastperiod=3"),
            2,
            "takes no parameter 'fastperiod'",
        ),
        (("indicators", "^GSPC", "--name", "rsi", "timeperiod=1"), 2, "timeperiod must be"),
        (("indicators", "^GSPC", "--name", "nosuch"), 2, "unknown indicator"),
        (("indicators", "^GSPC", "--format", "xml"), 2, "--format must be one of"),
        (("indicators", "NOSUCH"), 4, "no bars for NOSUCH"),
        (("analytics", "NVDA", "--risk-free", "2"), 2, "--risk-free is an annual rate"),
        (("analytics", "NVDA", "--benchmark", "NOSUCH"), 4, "no bars for the benchmark NOSUCH"),
        (("analytics", "NOSUCH"), 4, "no bars for NOSUCH"),
    ],
)
def test_bad_input_is_one_line_and_a_documented_exit_code(lake: Path, args, code, message) -> None:
    """In-process (typer's runner over the same app), to keep the suite fast."""
    from typer.testing import CliRunner

    from barlake.cli import app

    result = CliRunner().invoke(app, [*args, "--lake", str(lake)])
    assert result.exit_code == code, result.output
    err = result.stderr
    assert err.startswith("barlake: error: ") and message in err and err.count("\n") == 1
