"""The cross-sectional panel against the per-symbol objects, from DuckDB, in the same run.

A local lake of N synthetic 20-year symbols (default 2,000; XNYS sessions 2005-01-03 ..
2024-12-30) is written once, the panel built from it, then three queries a quant runs every
morning are timed from DuckDB over both layouts, alternating (median of --reps):

- one date across all symbols   (per-symbol: `daily/*.parquet WHERE date = D`;
                                  panel: `panel/daily/*/*.parquet WHERE year = Y AND date = D`)
- one year of 500 symbols       (per-symbol: the 500 files by name; panel: `year = Y AND
                                  symbol IN (…)`)
- a 20-session screen           (top 50 by 20-session return, every symbol)

Each pair is checked to return the same rows. Then a daily update: every symbol gets one more
session (2024-12-31, the last of the year, so the partition rewritten is a full year's) and the
incremental panel build is timed, beside a build from nothing of the
same lake (and a second "update" that rewrites the same bytes: new generations, no new rows);
both are linear in the number of symbols, so the 10,000-symbol figure is the
measured one × 10,000 / N.

Goals: one-date query ≥ 50× faster from the panel; incremental update for 10,000 symbols
≤ 60 s (2 cores).

Run: ./uvw run python bench/bench_panel.py [--symbols 2000] [--reps 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import synthetic_symbol, verdict

from barlake.adapters.local_store import LocalObjectStore
from barlake.core.codec import encode_daily
from barlake.core.layout import daily_name
from barlake.core.panel import MANIFEST_NAME
from barlake.services.panel import PanelService

ONE_DATE = date(2024, 6, 14)
LAST_INITIAL = date(2024, 12, 30)
UPDATE_DAY = date(2024, 12, 31)
GOAL_RATIO = 50.0
GOAL_UPDATE_S = 60.0
TARGET_SYMBOLS = 10_000


def write_lake(root: Path, count: int) -> tuple[LocalObjectStore, dict[str, pa.Table]]:
    """count symbols named S00000… (the synthetic tickers repeat beyond 100 seeds)."""
    raw = LocalObjectStore(root, "raw")
    full: dict[str, pa.Table] = {}
    base = synthetic_symbol(20240101)
    for k in range(count):
        data = synthetic_symbol(20240101 + k) if k < 100 else base
        symbol = f"S{k:05d}"
        bars = data.bars.set_column(0, "symbol", pa.array([symbol] * data.bars.num_rows))
        if k >= 100:  # vary prices cheaply: scale the base path (rows stay realistic)
            factor = 1.0 + (k % 997) / 997
            for name in ("open", "high", "low", "close", "adj_close"):
                i = bars.schema.get_field_index(name)
                bars = bars.set_column(i, name, pc.multiply(bars[name], factor))
        actions = data.actions.set_column(
            0, "symbol", pa.array([symbol] * data.actions.num_rows, pa.string())
        )
        full[symbol] = (bars, actions)  # type: ignore[assignment]
        initial = bars.filter(pc.less_equal(bars["date"], pa.scalar(LAST_INITIAL)))
        raw.write(daily_name(symbol), encode_daily(initial, actions))
    return raw, full  # type: ignore[return-value]


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def compare(
    con: duckdb.DuckDBPyConnection, objects_sql: str, panel_sql: str, reps: int
) -> tuple[float, float, int]:
    """Median seconds of each query (alternating), after checking they return the same rows."""
    a = con.sql(objects_sql).to_arrow_table()
    b = con.sql(panel_sql).to_arrow_table()
    a, b = (pa.table(t) if not isinstance(t, pa.Table) else t for t in (a, b))
    assert a.num_rows == b.num_rows and a.sort_by(
        [(c, "ascending") for c in a.column_names]
    ).equals(b.sort_by([(c, "ascending") for c in b.column_names])), (
        "the panel and the per-symbol objects disagree"
    )
    times: dict[str, list[float]] = {"objects": [], "panel": []}
    for _ in range(reps):
        for key, sql in (("objects", objects_sql), ("panel", panel_sql)):
            times[key].append(timed(lambda s=sql: con.sql(s).to_arrow_table())[0])
    return statistics.median(times["objects"]), statistics.median(times["panel"]), a.num_rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--update-reps", type=int, default=2)
    ap.add_argument("--dir", help="lake folder (default: a temporary one)")
    args = ap.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench-panel-"))
    print(
        f"{args.symbols} synthetic 20-year symbols in {root}; {os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f}), duckdb {duckdb.__version__}, "
        f"pyarrow {pa.__version__}"
    )

    seconds, (raw, full) = timed(lambda: write_lake(root, args.symbols))  # type: ignore[misc]
    print(f"lake written in {seconds:.1f} s")
    derived = LocalObjectStore(root, "derived")
    clock = lambda: datetime(2025, 1, 1, tzinfo=UTC)  # noqa: E731
    first_s, report = timed(lambda: PanelService(raw, derived, clock, workers=2).build())
    print(f"panel from nothing: {first_s:.1f} s, {len(report.partitions)} partitions")  # type: ignore[attr-defined]

    con = duckdb.connect()
    con.execute("SET threads = 2")
    objects = f"read_parquet('{raw.dir}/daily/*.parquet')"
    panel = f"read_parquet('{derived.dir}/panel/daily/*/*.parquet', hive_partitioning = true)"
    cols = "symbol, date, open, high, low, close, adj_close, volume"
    year = ONE_DATE.year
    chosen = [f"S{k:05d}" for k in range(0, args.symbols, max(1, args.symbols // 500))][:500]
    in_list = ", ".join(f"'{s}'" for s in chosen)
    files = ", ".join(f"'{raw.dir}/daily/{s}.parquet'" for s in chosen)
    screen = """
        WITH w AS (
            SELECT symbol, date, close FROM {src}
            WHERE {where} date > DATE '{d}' - INTERVAL 30 DAY AND date <= DATE '{d}'
        ), ranked AS (
            SELECT symbol, date, close,
                   row_number() OVER (PARTITION BY symbol ORDER BY date DESC) AS k
            FROM w
        )
        SELECT symbol, max(close) FILTER (WHERE k = 1) / max(close) FILTER (WHERE k = 20) - 1
               AS ret20
        FROM ranked WHERE k <= 20 GROUP BY symbol ORDER BY ret20 DESC, symbol LIMIT 50
    """
    cases = {
        "one date, all symbols": (
            f"SELECT {cols} FROM {objects} WHERE date = DATE '{ONE_DATE}'",
            f"SELECT {cols} FROM {panel} WHERE year = {year} AND date = DATE '{ONE_DATE}'",
        ),
        "one year, 500 symbols": (
            f"SELECT {cols} FROM read_parquet([{files}]) WHERE year(date) = {year}",
            f"SELECT {cols} FROM {panel} WHERE year = {year} AND symbol IN ({in_list})",
        ),
        "20-session screen, all symbols": (
            screen.format(src=objects, where="", d=ONE_DATE),
            screen.format(src=panel, where=f"year = {year} AND", d=ONE_DATE),
        ),
    }
    results = {}
    for name, (a, b) in cases.items():
        t_obj, t_panel, rows = compare(con, a, b, args.reps)
        results[name] = (t_obj, t_panel)
        print(
            f"{name:32s} per-symbol {t_obj * 1000:9.1f} ms   panel {t_panel * 1000:8.1f} ms   "
            f"{t_obj / t_panel:7.1f}×   ({rows} rows)"
        )

    # A daily update: one more session for every symbol, then the incremental build.
    update_times = []
    for rep in range(args.update_reps):
        for symbol, (bars, actions) in full.items():  # type: ignore[misc]
            if rep == 0:
                raw.write(daily_name(symbol), encode_daily(bars, actions))
            else:  # the same bytes again: new generations, the same rows (every object read)
                raw.write(daily_name(symbol), raw.read(daily_name(symbol)).data)  # type: ignore[union-attr]
        seconds, report = timed(lambda: PanelService(raw, derived, clock, workers=2).build())
        update_times.append(seconds)
        print(
            f"daily update #{rep + 1}: {report.changed} symbols changed, "  # type: ignore[attr-defined]
            f"{len(report.partitions)} partitions rewritten in {seconds:.2f} s"  # type: ignore[attr-defined]
        )
    update_s = update_times[0]  # the real update; later ones rewrite the same rows
    derived.delete(MANIFEST_NAME)
    rebuild_s, _ = timed(lambda: PanelService(raw, derived, clock, workers=2).build())
    scale = TARGET_SYMBOLS / args.symbols
    t_obj, t_panel = results["one date, all symbols"]
    ratio = t_obj / t_panel
    print()
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    print(
        f"one-date query: {ratio:.1f}× faster from the panel (goal ≥ {GOAL_RATIO:.0f}×): "
        f"{verdict(ratio >= GOAL_RATIO)}"
    )
    print(
        f"incremental daily update: {update_s:.2f} s for {args.symbols} symbols "
        f"(republishing every symbol: {rebuild_s:.2f} s, {rebuild_s / update_s:.1f}× more) → "
        f"{update_s * scale:.1f} s for {TARGET_SYMBOLS:,} (goal ≤ {GOAL_UPDATE_S:.0f} s): "
        f"{verdict(update_s * scale <= GOAL_UPDATE_S)}"
    )


if __name__ == "__main__":
    main()
