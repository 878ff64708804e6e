"""Benchmark data: realistic synthetic 20-year daily symbols, and the real Yahoo recordings.

Synthetic symbols look like what Yahoo's chart API returns (and therefore what the lake stores):
- one bar per XNYS session 2005-01-03..2024-12-31 (~5,030 rows), from the project's calendar;
- prices follow a fat-tailed random walk, are rounded to whole cents in *traded* (unadjusted)
  terms, then split-adjusted and stored as float32 widened to float64 — exactly how Yahoo's
  values look (522.48 → 522.47998046875; before a 4:1 split, 52.213 → 13.053250312805176);
- open/high/low are consistent with close (low ≤ open, close ≤ high);
- adj_close = close × the cumulative dividend factor (Yahoo/CRSP: 1 − D / previous close per
  ex-date), which steps at ~80 quarterly ex-dates: float32 like Yahoo's, but not cent-exact;
- volume: log-normal AR(1) integers, most multiples of 100, ×4 before the split (Yahoo
  split-adjusts volume);
- actions: one 4:1 split and ~80 quarterly dividends (split-adjusted amounts, as Yahoo reports).

Everything is pure and seeded: `synthetic_symbol(seed)` always returns the same tables.

Also the shared timing harness (`interleaved`, alternating blocks) and the `Row` that
run_all.py prints.
"""

from __future__ import annotations

import argparse
import gc
import string
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from barlake.core.schema import ACTION_SCHEMA, BAR_SCHEMA

REPO = Path(__file__).resolve().parents[1]
CHART_FIXTURES = REPO / "tests" / "fixtures" / "yahoo" / "chart_api"

FIRST_DAY = date(2005, 1, 3)
LAST_DAY = date(2024, 12, 31)
SPLIT_RATIO = 4.0


@dataclass(frozen=True)
class SymbolData:
    symbol: str
    bars: pa.Table  # BAR_SCHEMA, sorted by date, one row per session
    actions: pa.Table  # ACTION_SCHEMA, sorted by (date, kind)


@lru_cache(maxsize=1)
def xnys_sessions() -> pa.Array:
    """The XNYS sessions 2005-01-03..2024-12-31 (date32), from the project's calendar."""
    from barlake.core.calendar import calendar_for

    return calendar_for("AAPL").sessions(FIRST_DAY, LAST_DAY)


def _ticker(rng: np.random.Generator, seed: int) -> str:
    letters = "".join(rng.choice(list(string.ascii_uppercase), size=3))
    return f"{letters}{seed % 100:02d}"  # unique across seeds 0..99, valid Yahoo spelling


def _f32(values: np.ndarray) -> np.ndarray:
    """float32 widened to float64: what Yahoo's JSON numbers are."""
    return values.astype(np.float32).astype(np.float64)


def synthetic_symbol(seed: int, sessions: pa.Array | None = None) -> SymbolData:
    """One realistic 20-year daily symbol (bars + actions), fully determined by `seed`."""
    if sessions is None:
        sessions = xnys_sessions()
    n = len(sessions)
    rng = np.random.default_rng(seed)
    symbol = _ticker(rng, seed)

    # Split-adjusted "true" price path: Student-t daily log returns (fat tails), ~28 %/yr vol.
    start = float(np.exp(rng.uniform(np.log(8.0), np.log(60.0))))
    returns = 0.0003 + 0.0175 * rng.standard_t(df=4, size=n) / np.sqrt(2.0)
    adjusted = start * np.exp(np.cumsum(returns))

    # Traded prices are cents; before the split they are 4× the split-adjusted path.
    split_at = int(rng.integers(n // 4, 3 * n // 4))
    factor = np.where(np.arange(n) < split_at, SPLIT_RATIO, 1.0)

    def cents(adjusted_price: np.ndarray) -> np.ndarray:
        return np.maximum(np.rint(adjusted_price * factor * 100.0), 1.0)

    close_c = cents(adjusted)
    prev = np.r_[adjusted[0] * np.exp(-returns[0]), adjusted[:-1]]
    open_c = cents(prev * np.exp(rng.normal(0.0, 0.006, n)))
    top = np.maximum(open_c, close_c)
    bottom = np.minimum(open_c, close_c)
    high_c = np.maximum(np.rint(top * (1.0 + np.abs(rng.normal(0.0, 0.009, n)))), top)
    low_c = np.minimum(np.rint(bottom * (1.0 - np.abs(rng.normal(0.0, 0.009, n)))), bottom)
    low_c = np.maximum(low_c, 1.0)

    def price(c: np.ndarray) -> np.ndarray:
        return _f32(c / 100.0 / factor)

    close = price(close_c)

    # Quarterly ex-dates (~63 sessions apart); the amount is reset yearly to ~0.45 %/quarter of
    # the traded price and held between resets, in whole cents — like real dividends.
    ex_dates: list[int] = []
    i = int(rng.integers(15, 63))
    while i < n:
        ex_dates.append(i)
        i += 63 + int(rng.integers(-4, 5))
    amounts_c: list[float] = []
    for k, e in enumerate(ex_dates):
        if k % 4 == 0:
            amount = max(1.0, float(np.rint(close_c[e - 1] * 0.0045)))
        amounts_c.append(amount)
    dividends = np.array([a / 100.0 / factor[e] for a, e in zip(amounts_c, ex_dates, strict=True)])

    # Cumulative adjustment: each ex-date scales every earlier day by 1 − D / close[e−1].
    step = np.ones(n)
    for e, d in zip(ex_dates, dividends, strict=True):
        step[e - 1] = 1.0 - d / close[e - 1]
    multiplier = np.cumprod(step[::-1])[::-1]  # product of the factors at or after each day
    adj_close = _f32(close * multiplier)

    # Volume: log-normal AR(1) in traded shares; most prints in round lots; ×4 before the split.
    level = np.log(float(np.exp(rng.uniform(np.log(2e5), np.log(4e7)))))
    shocks = rng.normal(0.0, 0.35, n)
    log_volume = np.empty(n)
    log_volume[0] = level
    for t in range(1, n):
        log_volume[t] = level + 0.7 * (log_volume[t - 1] - level) + shocks[t]
    volume = np.rint(np.exp(log_volume)).astype(np.int64)
    lots = rng.random(n) < 0.6
    volume[lots] = np.maximum(np.rint(volume[lots] / 100.0).astype(np.int64), 1) * 100
    volume = volume * factor.astype(np.int64)

    bars = pa.table(
        {
            "symbol": pa.array([symbol] * n, pa.string()),
            "date": sessions,
            "open": price(open_c),
            "high": price(high_c),
            "low": price(low_c),
            "close": close,
            "adj_close": adj_close,
            "volume": volume,
        },
        schema=BAR_SCHEMA,
    )
    action_rows = [
        (sessions[e].as_py(), "dividend", float(d))
        for e, d in zip(ex_dates, dividends, strict=True)
    ]
    action_rows.append((sessions[split_at].as_py(), "split", SPLIT_RATIO))
    action_rows.sort()
    actions = pa.table(
        {
            "symbol": [symbol] * len(action_rows),
            "date": [r[0] for r in action_rows],
            "kind": [r[1] for r in action_rows],
            "value": [r[2] for r in action_rows],
        },
        schema=ACTION_SCHEMA,
    )
    return SymbolData(symbol, bars, actions)


def synthetic_universe(count: int, seed: int = 20240101) -> list[SymbolData]:
    """`count` distinct synthetic symbols (seeds seed, seed+1, …)."""
    return [synthetic_symbol(seed + k) for k in range(count)]


def actions_through(actions: pa.Table, last: date | None, first: date | None = None) -> pa.Table:
    """The actions dated in [first, last] (None: unbounded)."""
    keep = [
        (first is None or d >= first) and (last is None or d <= last)
        for d in actions.column("date").to_pylist()
    ]
    return actions.filter(pa.array(keep, pa.bool_()))


@dataclass(frozen=True)
class IngestCase:
    """What ingest holds when it merges: the stored object's content and one fetch."""

    symbol: str
    stored_bars: pa.Table
    stored_actions: pa.Table
    fetched_bars: pa.Table
    fetched_actions: pa.Table


def ingest_case(data: SymbolData, new_days: int, overlap: int) -> IngestCase:
    """Stored = all but the last `new_days` sessions; fetched = the last `new_days` sessions
    plus the `overlap` stored days before them (identical values, as a re-read returns them).
    Tables are copied so that nothing shares buffers with `data`, like a fresh fetch."""
    n = data.bars.num_rows
    stored = data.bars.slice(0, n - new_days)
    fetched = data.bars.slice(n - new_days - overlap)
    last_stored = stored.column("date")[-1].as_py()
    first_fetched = fetched.column("date")[0].as_py()
    fetched_actions = actions_through(data.actions, None, first_fetched)
    return IngestCase(
        data.symbol,
        pa.Table.from_batches(stored.to_batches()).combine_chunks(),
        actions_through(data.actions, last_stored),
        pa.Table.from_pylist(fetched.to_pylist(), schema=BAR_SCHEMA),
        fetched_actions,
    )


# --------------------------------------------------------------------------- real recordings


@dataclass(frozen=True)
class Recording:
    name: str
    symbol: str
    bars: pa.Table
    actions: pa.Table


def real_recordings(directory: Path = CHART_FIXTURES) -> list[Recording]:
    """The recorded Yahoo chart answers with bars (tests/fixtures/yahoo/chart_api/*.json)."""
    from barlake.adapters.yahoo_chart import load_chart

    out = []
    for path in sorted(directory.glob("*.json")):
        rec = load_chart(path)
        if rec.error is None and rec.bars.num_rows:
            out.append(Recording(path.name, rec.symbol, rec.bars, rec.actions))
    return out


# --------------------------------------------------------------------------- self-check


def check_realism(data: SymbolData) -> list[str]:
    """Problems with a synthetic symbol (empty when it looks like Yahoo data)."""
    b = {name: data.bars.column(name).to_numpy() for name in BAR_SCHEMA.names[2:]}
    problems = []
    for name in ("open", "high", "low", "close", "adj_close"):
        v = b[name]
        if not np.array_equal(v, _f32(v)):
            problems.append(f"{name} is not float32-exact")
        if (v <= 0).any():
            problems.append(f"{name} has non-positive values")
    if (b["high"] < np.maximum(b["open"], b["close"])).any():
        problems.append("high below open/close")
    if (b["low"] > np.minimum(b["open"], b["close"])).any():
        problems.append("low above open/close")
    kinds = data.actions.column("kind").to_pylist()
    splits, dividends = kinds.count("split"), kinds.count("dividend")
    if splits != 1 or not 70 <= dividends <= 90:
        problems.append(f"unexpected actions: {splits} splits, {dividends} dividends")
    return problems


# --------------------------------------------------------------------------- timing harness


@dataclass
class Samples:
    """Per-call wall times in seconds."""

    name: str
    seconds: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return float(np.median(self.seconds)) * 1e3

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.seconds, 90)) * 1e3

    def line(self) -> str:
        return (
            f"{self.name:<10} median {self.median_ms:7.3f} ms   p90 {self.p90_ms:7.3f} ms"
            f"   (n={len(self.seconds)})"
        )


def interleaved(
    contenders: dict[str, Callable[[Any], Any]],
    inputs: list[Any],
    reps: int,
    *,
    block: int = 10,
    warmup: int = 10,
) -> dict[str, Samples]:
    """Time each contender on each input `reps` times, in alternating blocks.

    Each block runs one contender `block` times over all inputs, then the next contender; the
    contenders' order flips every block. Blocks are short (~0.1 s), so slow drifts in machine
    load (shared 2-core hosts) hit every contender alike, while no contender runs on caches
    just churned by another — which is what `timeit`/pyperf measure too. block=1 interleaves
    call by call: the fast contender then pays for the baseline's cache churn (reported as a
    sensitivity figure). Like `timeit`, the garbage collector is paused while timing.
    """
    out = {name: Samples(name) for name in contenders}
    forward = list(contenders.items())
    backward = forward[::-1]
    for _ in range(warmup):
        for x in inputs:
            for fn in contenders.values():
                fn(x)
    gc.collect()
    was_enabled = gc.isenabled()
    gc.disable()
    clock = time.perf_counter
    try:
        for k, start in enumerate(range(0, reps, block)):
            n = min(block, reps - start)
            order = backward if k % 2 else forward
            if block == 1:  # call by call: contenders alternate on every input
                for x in inputs:
                    for name, fn in order:
                        t0 = clock()
                        fn(x)
                        out[name].seconds.append(clock() - t0)
                continue
            for name, fn in order:
                seconds = out[name].seconds
                for _ in range(n):
                    for x in inputs:
                        t0 = clock()
                        fn(x)
                        seconds.append(clock() - t0)
    finally:
        if was_enabled:
            gc.enable()
    return out


@dataclass(frozen=True)
class Row:
    """One line of run_all's table."""

    metric: str
    measured: str
    baseline: str
    ratio: str
    goal: str
    verdict: str
    note: str = ""


def call_by_call(contenders: dict[str, Callable[[Any], Any]], inputs: list[Any], reps: int) -> str:
    """The sensitivity figure: both contenders interleaved call by call (block=1)."""
    res = interleaved(contenders, inputs, reps, block=1, warmup=2)
    ours, base = res["barlake"], res["pandas"]
    return (
        f"call-by-call interleaved ({reps} reps): barlake {ours.median_ms:.3f} ms, "
        f"pandas {base.median_ms:.3f} ms, {base.median_ms / ours.median_ms:.2f}×"
    )


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


if __name__ == "__main__":
    sym = synthetic_symbol(20240101)
    print(sym.symbol, sym.bars.num_rows, "rows,", sym.actions.num_rows, "actions")
    print(sym.bars.slice(0, 3).to_pylist())
    print(sym.bars.slice(sym.bars.num_rows - 2).to_pylist())
    print(sym.actions.slice(0, 3).to_pylist())
    print("problems:", check_realism(sym) or "none")
    for rec in real_recordings():
        print(rec.name, rec.symbol, rec.bars.num_rows, "rows")


def timing_main(doc: str | None, run: Callable[[int, int], Any]) -> None:
    """The command line shared by the timing benches: --reps and --symbols."""

    ap = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument("--symbols", type=int, default=5)
    args = ap.parse_args()
    run(args.reps, args.symbols)
