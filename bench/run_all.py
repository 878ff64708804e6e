"""Run the benchmarks and print one markdown table (for the README).

Run: ./uvw run python bench/run_all.py [--reps 200] [--symbols 5] [--size-symbols 12] [--quick]
                                       [--no-api]

Every timing is a median over symbols × repetitions, with the pandas baseline measured in the
same process, interleaved call by call; ratios compare medians from that one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_api
import bench_merge
import bench_size
import bench_weekly
from _data import Row, synthetic_universe, xnys_sessions


def table(rows: list[Row]) -> str:
    out = [
        "| metric | measured | baseline | ratio | goal | verdict |",
        "|---|---|---|---|---|---|",
    ]
    out += [
        f"| {r.metric} | {r.measured} | {r.baseline} | {r.ratio} | {r.goal} | {r.verdict} |"
        for r in rows
    ]
    return "\n".join(out)


def environment() -> str:
    return (
        f"{date.today().isoformat()}, {platform.machine()} × {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}, pyarrow {pa.__version__}, "
        f"pandas {pd.__version__}, numpy {np.__version__}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=200, help="timed repetitions per symbol")
    ap.add_argument("--symbols", type=int, default=5, help="symbols for the timings")
    ap.add_argument("--size-symbols", type=int, default=12, help="symbols for the sizes")
    ap.add_argument("--quick", action="store_true", help="30 repetitions (a smoke run)")
    ap.add_argument("--no-api", action="store_true", help="skip the HTTP API benchmark (~2 min)")
    args = ap.parse_args()
    reps = 30 if args.quick else args.reps

    started = time.perf_counter()
    xnys_sessions()  # load the exchange calendar once, outside every timing
    universe = synthetic_universe(max(args.symbols, args.size_symbols))
    rows: list[Row] = []
    rows += bench_merge.run(reps, args.symbols, universe[: args.symbols])
    print()
    rows += bench_weekly.run(reps, args.symbols, universe[: args.symbols])
    print()
    rows += bench_size.run(args.size_symbols, universe[: args.size_symbols])
    if not args.no_api:
        print()
        seconds, rounds = (1.0, 2) if args.quick else (1.5, 5)
        rows += bench_api.run(seconds, rounds, clients=3, quick=args.quick)
    elapsed = time.perf_counter() - started

    print("\n## summary\n")
    print(table(rows))
    print(
        f"\nTimings: median (p90) ms per symbol over {args.symbols} synthetic 20-year symbols × "
        f"{reps} repetitions, pandas measured in the same run in alternating blocks; ratio = "
        f"pandas median / barlake median. Sizes: mean over {args.size_symbols} symbols; "
        "KB = 1,000 bytes."
    )
    print("Sensitivity (pandas between every barlake call, so barlake runs on churned caches):")
    for r in rows:
        if r.note:
            print(f"- {r.note}")
    print(f"{environment()}; total run {elapsed:.0f} s.")


if __name__ == "__main__":
    main()
