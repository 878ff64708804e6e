"""Real price series for the analytics tests, as the lake stores them.

- `arch.data.sp500` / `arch.data.nasdaq`: 20 years (1999-01-04 → 2018-12-31, 5,031 sessions)
  of daily S&P 500 and NASDAQ Composite bars from Yahoo, shipped with the `arch` package (a dev
  dependency; University of Illinois/NCSA licence), read from the installed package.
- The Yahoo recordings in tests/fixtures/yahoo (see its SOURCES.md): NVDA with its 4:1 split
  of 2021-07-20, MSFT with four dividends, 2021-02-01 → 2022-01-28.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from barlake.adapters.yahoo_chart import load_chart
from barlake.core.schema import BAR_SCHEMA

CHART = Path(__file__).resolve().parent / "fixtures" / "yahoo" / "chart_api"
NVDA = CHART / "historical-via-chart-NVDA-split-2021-02-01-to-2022-01-31.csv.json"
MSFT = CHART / "historical-via-chart-MSFT-dividends-2021-02-01-to-2022-01-31.csv.json"


def arch_bars(name: str = "sp500", symbol: str = "^GSPC") -> pa.Table:
    """The arch package's series as a daily bars table (BAR_SCHEMA)."""
    import importlib

    df = importlib.import_module(f"arch.data.{name}").load()
    dates = df.index.to_numpy().astype("datetime64[D]")
    columns = {
        "symbol": pa.array([symbol] * len(df), pa.string()),
        "date": pa.array(dates, pa.date32()),
        "open": pa.array(df["Open"].to_numpy(np.float64)),
        "high": pa.array(df["High"].to_numpy(np.float64)),
        "low": pa.array(df["Low"].to_numpy(np.float64)),
        "close": pa.array(df["Close"].to_numpy(np.float64)),
        "adj_close": pa.array(df["Adj Close"].to_numpy(np.float64)),
        "volume": pa.array(df["Volume"].to_numpy(np.int64)),
    }
    return pa.table(columns).cast(BAR_SCHEMA)


def recorded(path: Path) -> tuple[pa.Table, pa.Table]:
    """(bars, actions) of a Yahoo recording, as the lake stores them."""
    chart = load_chart(path)
    assert chart.bars is not None
    return chart.bars, chart.actions


def column(table: pa.Table, name: str) -> np.ndarray:
    """A float column with nulls as NaN (TA-Lib's and empyrical's convention)."""
    return table.column(name).to_numpy(zero_copy_only=False).astype(np.float64)
