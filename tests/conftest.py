"""Shared test helpers: fixture paths and small bar-table builders."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from barlake.core.schema import BAR_SCHEMA

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"


def bars(symbol: str, rows: list[tuple]) -> pa.Table:
    """rows of (date, open, high, low, close, adj_close, volume)."""
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)]
    return pa.Table.from_pydict(
        {
            "symbol": [symbol] * len(rows),
            "date": list(cols[0]),
            "open": list(cols[1]),
            "high": list(cols[2]),
            "low": list(cols[3]),
            "close": list(cols[4]),
            "adj_close": list(cols[5]),
            "volume": list(cols[6]),
        },
        schema=BAR_SCHEMA,
    )


def flat_bars(symbol: str, days: list[date], price: float = 10.0, volume: int = 100) -> pa.Table:
    return bars(symbol, [(d, price, price, price, price, price, volume) for d in days])


def weekdays(start: date, n: int) -> list[date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES
