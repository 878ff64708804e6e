"""Weekly + monthly rebuild per symbol, end to end: daily bytes → decode → aggregate → encode.

What WeeklyService.handle does for one finalized daily object (minus the store):
    bars, _ = decode_daily(daily_bytes)
    through = complete_through(symbol, last date)          # exchange calendar
    for interval in ("1wk", "1mo"): encode_periods(aggregate(bars, interval, through), gen)

Baseline, in the same run and interleaved call by call: pandas on its own daily format (written
by pandas, `date` as datetime64) — read_parquet → set_index("date") →
resample("W-MON", label="left", closed="left") and resample("MS") with
first/max/min/last/last/sum → dropna (periods with no bar) → to_parquet, for both intervals.
barlake also computes `sessions` and `provisional` per period; the baseline does not.

Run: ./uvw run python bench/bench_weekly.py [--reps 200] [--symbols 5]
"""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import (
    Row,
    SymbolData,
    call_by_call,
    interleaved,
    synthetic_universe,
    timing_main,
    verdict,
)

from barlake.core.aggregate import aggregate
from barlake.core.codec import decode_daily, decode_periods, encode_daily, encode_periods
from barlake.services.derived import complete_through

GOAL_MS = 1.5
GENERATION = 1_700_000_000_000_000  # a GCS-like generation number

_AGG = {
    "open": "first",
    "high": "max",
    "low": "min",
    "close": "last",
    "adj_close": "last",
    "volume": "sum",
}
_RULES = {"1wk": {"rule": "W-MON", "label": "left", "closed": "left"}, "1mo": {"rule": "MS"}}


@dataclass(frozen=True)
class Prepared:
    symbol: str
    data: SymbolData
    daily: bytes  # encode_daily
    pd_daily: bytes  # pandas' own to_parquet


def prepare(data: SymbolData) -> Prepared:
    df = data.bars.to_pandas()
    df["date"] = pd.to_datetime(df["date"])
    sink = io.BytesIO()
    df.to_parquet(sink)
    return Prepared(data.symbol, data, encode_daily(data.bars, data.actions), sink.getvalue())


def barlake_weekly(p: Prepared) -> tuple[bytes, bytes]:
    bars, _ = decode_daily(p.daily)
    through = complete_through(p.symbol, bars.column("date")[-1].as_py())
    weekly = encode_periods(aggregate(bars, "1wk", through), GENERATION)
    monthly = encode_periods(aggregate(bars, "1mo", through), GENERATION)
    return weekly, monthly


def _pandas_periods(daily: pd.DataFrame, interval: str) -> pd.DataFrame:
    return daily.resample(**_RULES[interval]).agg(_AGG).dropna(subset=["open"])


def pandas_weekly(p: Prepared) -> tuple[bytes, bytes]:
    daily = pd.read_parquet(io.BytesIO(p.pd_daily)).set_index("date")
    out = []
    for interval in ("1wk", "1mo"):
        sink = io.BytesIO()
        _pandas_periods(daily, interval).to_parquet(sink)
        out.append(sink.getvalue())
    return out[0], out[1]


def check(p: Prepared) -> None:
    """Both contenders agree on every period's label and OHLCV values (bit for bit)."""
    ours = [decode_periods(b) for b in barlake_weekly(p)]
    theirs = [pd.read_parquet(io.BytesIO(b)) for b in pandas_weekly(p)]
    for interval, a, b in zip(("1wk", "1mo"), ours, theirs, strict=True):
        labels = a.column("date").to_numpy().astype("datetime64[D]")
        assert np.array_equal(labels, b.index.to_numpy().astype("datetime64[D]")), interval
        for name in _AGG:
            assert np.array_equal(a.column(name).to_numpy(), b[name].to_numpy()), (interval, name)


def run(reps: int = 200, symbols: int = 5, universe: list[SymbolData] | None = None) -> list[Row]:
    universe = universe or synthetic_universe(symbols)
    prepared = [prepare(d) for d in universe]
    for p in prepared:
        check(p)
    print(f"## weekly+monthly rebuild: {len(prepared)} symbols × {reps} reps, in blocks")
    contenders = {"barlake": barlake_weekly, "pandas": pandas_weekly}
    res = interleaved(contenders, prepared, reps)
    ours, base = res["barlake"], res["pandas"]
    speedup = base.median_ms / ours.median_ms
    ok = ours.median_ms <= GOAL_MS
    rows = prepared[0].data.bars.num_rows
    print(f"decode {rows} daily rows → aggregate 1wk + 1mo → encode both")
    print("  " + ours.line())
    print("  " + base.line())
    print(f"  speed-up vs pandas: {speedup:.2f}×")
    print(f"  goal ≤ {GOAL_MS} ms/symbol: {verdict(ok)} ({ours.median_ms:.3f} ms)")
    note = call_by_call(contenders, prepared, max(reps // 4, 5))
    print(f"  sensitivity, {note}")
    return [
        Row(
            "weekly+monthly rebuild, ms/symbol (median; p90)",
            f"{ours.median_ms:.3f} ({ours.p90_ms:.3f})",
            f"pandas {base.median_ms:.3f} ({base.p90_ms:.3f})",
            f"{speedup:.2f}×",
            f"≤ {GOAL_MS} ms",
            verdict(ok),
            note=f"weekly {note}",
        )
    ]


if __name__ == "__main__":
    timing_main(__doc__, run)
