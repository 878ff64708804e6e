"""Bytes per 20-year daily symbol: encode_daily vs pyarrow and pandas defaults, losslessly.

- barlake: encode_daily(bars, actions, provenance) — the stored daily object (actions in its
  footer; provenance columns at their worst: every row fetched on its own evening, one source
  with a run of a fallback's rows);
- (i) pyarrow: pq.write_table(bars) with defaults (snappy, dictionary, statistics);
- (ii) pandas: bars.to_pandas().to_parquet() with defaults (pyarrow engine, snappy).
The baselines store the bars only (they have no place for actions), which favours them by the
size of barlake's actions footer (printed separately).

Also: round trips are checked bit for bit (every float's 64 bits, every int, every date, the
actions); the weekly and monthly objects (encode_periods); the real Yahoo recordings' bytes
per row against synthetic windows of the same length; and the lake at 10,000 symbols with a
monthly GCS Standard storage cost.

KB here means 1,000 bytes (KiB = 1,024 bytes is printed alongside).

Run: ./uvw run python bench/bench_size.py [--symbols 12]
"""

from __future__ import annotations

import argparse
import io
import sys
from datetime import UTC, datetime, time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import Row, SymbolData, real_recordings, synthetic_universe, verdict

from barlake.core.aggregate import aggregate
from barlake.core.codec import (
    ACTIONS_KEY,
    actions_to_json,
    decode_daily,
    decode_periods,
    decode_provenance,
    encode_daily,
    encode_periods,
)
from barlake.core.provenance import PROVENANCE_SCHEMA
from barlake.core.schema import BAR_SCHEMA, empty_actions
from barlake.services.derived import complete_through

GOAL_KB = 92.0
SYMBOLS_AT_SCALE = 10_000
# GCS Standard storage, regional (e.g. us-central1, europe-west1), USD per GB-month, where GCS
# bills a "GB" of 2**30 bytes. Multi-region US/EU is ~$0.026; see cloud.google.com/storage/pricing.
USD_PER_GB_MONTH = 0.020
GENERATION = 1_700_000_000_000_000


def _kb(n: float) -> str:
    return f"{n / 1000:.1f} KB ({n / 1024:.1f} KiB)"


def bit_identical(a: pa.Table, b: pa.Table) -> bool:
    """Same schema, same rows, every value identical bit for bit (floats compared as uint64)."""
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for name in a.schema.names:
        x, y = a.column(name), b.column(name)
        if x.null_count != y.null_count:
            return False
        if pa.types.is_floating(x.type):
            xs = x.to_numpy().view(np.uint64)
            ys = y.to_numpy().view(np.uint64)
            if not np.array_equal(xs, ys):
                return False
        elif not x.equals(y):
            return False
    return True


def _pyarrow_default(bars: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(bars, sink)
    return sink.getvalue()


def _pandas_default(bars: pa.Table) -> bytes:
    sink = io.BytesIO()
    bars.to_pandas().to_parquet(sink)
    return sink.getvalue()


def _periods(data: SymbolData) -> tuple[bytes, bytes]:
    last = data.bars.column("date")[-1].as_py()
    through = complete_through(data.symbol, last)
    out = []
    for interval in ("1wk", "1mo"):
        periods = aggregate(data.bars, interval, through)
        blob = encode_periods(periods, GENERATION)
        assert bit_identical(decode_periods(blob), periods), f"{interval} round trip differs"
        out.append(blob)
    return out[0], out[1]


def real_vs_synthetic(universe: list[SymbolData]) -> list[str]:
    """Bytes/row of the real recordings vs synthetic windows of the same length."""
    lines = []
    rng = np.random.default_rng(7)
    for rec in real_recordings():
        n = rec.bars.num_rows
        real = len(encode_daily(rec.bars, empty_actions()))
        synthetic = []
        for data in universe:
            start = int(rng.integers(0, data.bars.num_rows - n))
            synthetic.append(len(encode_daily(data.bars.slice(start, n), empty_actions())))
        syn = float(np.mean(synthetic))
        lines.append(
            f"| {rec.name} | {n} | {real:,} | {real / n:.1f} | {syn / n:.1f} | {real / syn:.2f} |"
        )
    return lines


def _provenance(bars: pa.Table) -> pa.Table:
    """Worst-case provenance: each row fetched the evening of its session (one distinct
    fetched_at per row, as daily ingestion over 20 years gives), Yahoo's rows with one
    fallback run of 5 sessions."""
    days = bars.column("date").to_pylist()
    fetched = [datetime.combine(d, time(22), UTC) for d in days]
    source = ["yahoo"] * len(days)
    source[len(days) // 2 : len(days) // 2 + 5] = ["tiingo"] * min(5, len(days))
    return pa.table(
        [
            bars.column("date"),
            pa.array(source[: len(days)]),
            pa.array(fetched, pa.timestamp("s", "UTC")),
        ],
        schema=PROVENANCE_SCHEMA,
    )


def run(symbols: int = 12, universe: list[SymbolData] | None = None) -> list[Row]:
    universe = universe or synthetic_universe(symbols)
    sizes: dict[str, list[int]] = {
        k: []
        for k in (
            "ours",
            "ours_bars",
            "ours_plain",
            "footer",
            "pyarrow",
            "pandas",
            "weekly",
            "monthly",
        )
    }
    rows = []
    lossless = True
    for data in universe:
        provenance = _provenance(data.bars)
        blob = encode_daily(data.bars, data.actions, provenance)
        bars, actions = decode_daily(blob)
        lossless &= bit_identical(bars, data.bars) and bit_identical(actions, data.actions)
        lossless &= decode_provenance(blob).equals(provenance)
        assert pq.ParquetFile(io.BytesIO(blob)).metadata.metadata[ACTIONS_KEY]
        p = _pyarrow_default(data.bars)
        lossless_pa = bit_identical(pq.read_table(io.BytesIO(p)).cast(BAR_SCHEMA), data.bars)
        assert lossless_pa, "pyarrow default round trip differs"
        weekly, monthly = _periods(data)
        sizes["ours"].append(len(blob))
        sizes["ours_bars"].append(len(encode_daily(data.bars, empty_actions())))
        sizes["ours_plain"].append(len(encode_daily(data.bars, data.actions)))
        sizes["footer"].append(len(actions_to_json(data.actions).encode()))
        sizes["pyarrow"].append(len(p))
        sizes["pandas"].append(len(_pandas_default(data.bars)))
        sizes["weekly"].append(len(weekly))
        sizes["monthly"].append(len(monthly))
        rows.append(data.bars.num_rows)

    mean = {k: float(np.mean(v)) for k, v in sizes.items()}
    n_rows = float(np.mean(rows))
    ok = lossless and mean["ours"] / 1000 <= GOAL_KB

    print(f"## size: {len(universe)} synthetic 20-year daily symbols (~{n_rows:.0f} rows each)")
    print("| object | bytes/symbol (mean) | min..max | bytes/row | vs encode_daily |")
    print("|---|---:|---:|---:|---:|")

    def line(label: str, values: list[int]) -> None:
        m = float(np.mean(values))
        print(
            f"| {label} | {_kb(m)} | {min(values):,}..{max(values):,} | {m / n_rows:.1f} | "
            f"{m / mean['ours']:.2f}× |"
        )

    line("barlake encode_daily (bars + actions + provenance)", sizes["ours"])
    line("  without provenance (bars + actions)", sizes["ours_plain"])
    line("  of which bars only", sizes["ours_bars"])
    print(f"|   actions JSON in the footer | {mean['footer']:.0f} B | | | |")
    line("(i) pyarrow write_table defaults", sizes["pyarrow"])
    line("(ii) pandas to_parquet defaults", sizes["pandas"])
    line("weekly (encode_periods)", sizes["weekly"])
    line("monthly (encode_periods)", sizes["monthly"])
    print(f"lossless round trip (bit for bit, bars + actions + provenance + periods): {lossless}")
    print(
        f"goal ≤ {GOAL_KB:.0f} KB (KB = 1,000 bytes) per 20-year daily symbol, lossless: "
        f"{verdict(ok)} ({_kb(mean['ours'])})"
    )

    print("\nreal Yahoo recordings (encode_daily, bars only) vs synthetic windows of equal length:")
    print("| recording | rows | bytes | bytes/row | synthetic bytes/row | real/synthetic |")
    print("|---|---:|---:|---:|---:|---:|")
    for text in real_vs_synthetic(universe):
        print(text)

    per_symbol = mean["ours"] + mean["weekly"] + mean["monthly"]
    total = per_symbol * SYMBOLS_AT_SCALE
    gib = total / 2**30
    cost = gib * USD_PER_GB_MONTH
    print(f"\nat {SYMBOLS_AT_SCALE:,} symbols × 20 years:")
    for label, key in (("daily", "ours"), ("weekly", "weekly"), ("monthly", "monthly")):
        print(f"  {label:<8} {mean[key] * SYMBOLS_AT_SCALE / 1e6:8.1f} MB")
    print(f"  total    {total / 1e6:8.1f} MB = {total / 1e9:.3f} GB = {gib:.3f} GiB")
    pyarrow_total = (mean["pyarrow"] + mean["weekly"] + mean["monthly"]) * SYMBOLS_AT_SCALE
    print(
        f"  GCS Standard at ${USD_PER_GB_MONTH:.3f}/GB-month (regional, GB = 2^30 bytes): "
        f"${cost:.3f}/month (daily objects with pyarrow defaults: "
        f"${pyarrow_total / 2**30 * USD_PER_GB_MONTH:.3f}/month)"
    )
    return [
        Row(
            "daily object, bytes per 20-year symbol (lossless)",
            _kb(mean["ours"]),
            f"pyarrow {mean['pyarrow'] / 1000:.1f} KB; pandas {mean['pandas'] / 1000:.1f} KB",
            f"{mean['pyarrow'] / mean['ours']:.2f}× / {mean['pandas'] / mean['ours']:.2f}× smaller",
            f"≤ {GOAL_KB:.0f} KB, lossless",
            verdict(ok),
        ),
        Row(
            "weekly + monthly objects, bytes per symbol",
            f"{mean['weekly'] / 1000:.1f} + {mean['monthly'] / 1000:.1f} KB",
            "",
            "",
            "",
            "",
        ),
        Row(
            f"lake at {SYMBOLS_AT_SCALE:,} symbols (daily+weekly+monthly)",
            f"{total / 1e6:.0f} MB; ${cost:.3f}/month",
            "",
            "",
            f"GCS Standard ${USD_PER_GB_MONTH:.3f}/GB-month",
            "",
        ),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=12)
    args = ap.parse_args()
    run(args.symbols)


if __name__ == "__main__":
    main()
