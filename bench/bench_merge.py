"""Ingest's per-symbol merge, end to end: stored bytes → decode → merge → check → encode.

What IngestService._commit does for one symbol once the fetch is validated (minus the store):
    bars, actions = decode_daily(stored_bytes)
    merged = merge_bars(bars, fetched); acts = merge_actions(actions, fetched_actions)
    if bars_equal(merged, bars) and acts.equals(actions): no write
    else: encode_daily(merged, acts)

Cases, on realistic 20-year daily symbols (bench/_data.py):
  (a) 20y stored + 1 new day fetched;
  (b) 20y stored + 5 fetched days, 3 of which overlap the stored tail (identical values).

Baseline, in the same run and interleaved call by call: pandas (pyarrow engine, default
options) on its own format — pd.read_parquet(BytesIO) → pd.concat → drop_duplicates("date",
keep="last") → sort_values("date") → to_parquet(BytesIO). The baseline's stored bytes were
written by pandas itself, with `date` as datetime64 (how yfinance hands it over; faster in
pandas than an object column of datetime.date); its fetched rows are already a DataFrame.

Run: ./uvw run python bench/bench_merge.py [--reps 200] [--symbols 5]
"""

from __future__ import annotations

import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import (
    IngestCase,
    Row,
    SymbolData,
    call_by_call,
    ingest_case,
    interleaved,
    synthetic_universe,
    timing_main,
    verdict,
)

from barlake.core.codec import decode_daily, encode_daily
from barlake.core.merge import bars_equal, merge_actions, merge_bars

GOAL_MS = 1.3
GOAL_SPEEDUP = 3.5

CASES: tuple[tuple[str, str, int, int], ...] = (
    ("a", "20y + 1 new day", 1, 0),
    ("b", "20y + 5 fetched (3 overlap)", 2, 3),
)


@dataclass(frozen=True)
class Prepared:
    case: IngestCase
    expected: SymbolData  # the full history: what the merge must produce
    stored: bytes  # encode_daily of the stored part
    pd_stored: bytes  # pandas' own to_parquet of the stored part
    pd_fetched: pd.DataFrame


def _pandas_frame(table: object) -> pd.DataFrame:
    df = table.to_pandas()  # type: ignore[attr-defined]
    df["date"] = pd.to_datetime(df["date"])
    return df


def prepare(data: SymbolData, new_days: int, overlap: int) -> Prepared:
    case = ingest_case(data, new_days, overlap)
    sink = io.BytesIO()
    _pandas_frame(case.stored_bars).to_parquet(sink)
    return Prepared(
        case,
        data,
        encode_daily(case.stored_bars, case.stored_actions),
        sink.getvalue(),
        _pandas_frame(case.fetched_bars),
    )


# The stage clocks of the last barlake call (seconds), for the breakdown line.
STAGES: dict[str, list[float]] = {"decode": [], "merge": [], "check": [], "encode": []}


def barlake_merge(p: Prepared) -> bytes | None:
    clock = time.perf_counter
    t0 = clock()
    bars, actions = decode_daily(p.stored)
    t1 = clock()
    merged = merge_bars(bars, p.case.fetched_bars)
    merged_actions = merge_actions(actions, p.case.fetched_actions)
    t2 = clock()
    unchanged = bars_equal(merged, bars) and merged_actions.equals(actions)
    t3 = clock()
    out = None if unchanged else encode_daily(merged, merged_actions)
    t4 = clock()
    STAGES["decode"].append(t1 - t0)
    STAGES["merge"].append(t2 - t1)
    STAGES["check"].append(t3 - t2)
    STAGES["encode"].append(t4 - t3)
    return out


def pandas_merge(p: Prepared) -> bytes:
    stored = pd.read_parquet(io.BytesIO(p.pd_stored))
    merged = pd.concat([stored, p.pd_fetched])
    merged = merged.drop_duplicates("date", keep="last").sort_values("date")
    sink = io.BytesIO()
    merged.to_parquet(sink)
    return sink.getvalue()


def check(p: Prepared) -> None:
    """Both contenders produce the full history (barlake: bit for bit, actions included)."""
    out = barlake_merge(p)
    assert out is not None, "a new day must be written"
    bars, actions = decode_daily(out)
    assert bars.equals(p.expected.bars), "merged bars differ from the full history"
    assert actions.equals(p.expected.actions), "merged actions differ"
    df = pd.read_parquet(io.BytesIO(pandas_merge(p)))
    assert len(df) == p.expected.bars.num_rows, "pandas baseline lost or duplicated rows"


def _median_ms(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2] * 1e3 if values else float("nan")


def run(reps: int = 200, symbols: int = 5, universe: list[SymbolData] | None = None) -> list[Row]:
    universe = universe or synthetic_universe(symbols)
    rows: list[Row] = []
    print(f"## merge (ingest, per symbol): {len(universe)} symbols × {reps} reps, in blocks")
    for key, label, new_days, overlap in CASES:
        prepared = [prepare(d, new_days, overlap) for d in universe]
        for p in prepared:
            check(p)
        for stage in STAGES.values():
            stage.clear()
        contenders = {"barlake": barlake_merge, "pandas": pandas_merge}
        res = interleaved(contenders, prepared, reps)
        ours, base = res["barlake"], res["pandas"]
        n = len(ours.seconds)
        for stage in STAGES.values():
            del stage[: len(stage) - n]  # keep the timed calls only (drop warm-up and checks)
        stages = "  ".join(f"{k} {_median_ms(v):.3f}" for k, v in STAGES.items())
        note = call_by_call(contenders, prepared, max(reps // 4, 5))
        speedup = base.median_ms / ours.median_ms
        ok_ms, ok_x = ours.median_ms <= GOAL_MS, speedup >= GOAL_SPEEDUP
        first = prepared[0].case
        stored_rows, fetched_rows = first.stored_bars.num_rows, first.fetched_bars.num_rows
        print(f"case ({key}) {label}: {stored_rows} stored rows, {fetched_rows} fetched")
        print("  " + ours.line())
        print("  " + base.line())
        print(f"  barlake stages (median ms): {stages}")
        print(f"  speed-up vs pandas: {speedup:.2f}×")
        print(f"  goal ≤ {GOAL_MS} ms/symbol: {verdict(ok_ms)} ({ours.median_ms:.3f} ms)")
        print(f"  goal ≥ {GOAL_SPEEDUP}× pandas: {verdict(ok_x)} ({speedup:.2f}×)")
        print(f"  sensitivity, {note}")
        rows.append(
            Row(
                f"merge ({key}) {label}, ms/symbol (median; p90)",
                f"{ours.median_ms:.3f} ({ours.p90_ms:.3f})",
                f"pandas {base.median_ms:.3f} ({base.p90_ms:.3f})",
                f"{speedup:.2f}×",
                f"≤ {GOAL_MS} ms; ≥ {GOAL_SPEEDUP}×",
                f"{verdict(ok_ms)}; {verdict(ok_x)}",
                note=f"merge ({key}) {note}",
            )
        )
    return rows


if __name__ == "__main__":
    timing_main(__doc__, run)
