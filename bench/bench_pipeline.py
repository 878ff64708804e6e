"""Pipeline overhead per symbol: the local cloud stack beside the embedded run, same input.

Run: ./uvw run python bench/bench_pipeline.py [--symbols 220] [--reps 3]

Input: `--symbols` synthetic 20-year symbols (bench/_data.py, ~5,030 sessions each), served by
the replay provider from Parquet recordings. Each repetition ingests fresh symbols (a first
load: fetch, validate, merge, encode, create-only write, weekly + monthly + profile).

- embedded: `run_embedded` on the local folder store, in-process bus and SQLite — the baseline;
- stack: `barlake stack` (fake-gcs-server, Pub/Sub and Firestore emulators, one
  functions-framework process per function): publish one request, wait until the run is
  complete and every symbol's weekly, monthly and profile reflect its daily object.

Overhead per symbol = (stack wall − embedded wall) / symbols, medians over repetitions; goal
≤ 20 ms. The breakdown sums the functions' own log lines (`ms`, `fetch_ms`, `storage_ms`,
`state_ms`, `bus_ms` per event): time spent in each port, per symbol, across all processes
(they overlap in wall time: the functions run in parallel).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import synthetic_universe, verdict

from barlake import stack
from barlake.adapters.replay_provider import ReplayProvider
from barlake.config import Settings, build_app, build_embedded, run_embedded
from barlake.core.codec import encode_daily
from barlake.core.layout import daily_name, symbol_key
from barlake.messages import IngestRequest

GOAL_MS = 20.0


def write_recordings(folder: Path, count: int, reps: int) -> list[list[str]]:
    """reps × count distinct symbols, as Parquet recordings (the lake's own daily format)."""
    universe = synthetic_universe(count)
    groups = []
    folder.mkdir(parents=True, exist_ok=True)
    for r in range(reps):
        names = []
        for k, data in enumerate(universe):
            symbol = f"P{r}X{k:04d}"
            bars = data.bars.set_column(0, "symbol", _same(symbol, data.bars.num_rows))
            actions = data.actions.set_column(0, "symbol", _same(symbol, data.actions.num_rows))
            (folder / f"{symbol_key(symbol)}.parquet").write_bytes(encode_daily(bars, actions))
            names.append(symbol)
        groups.append(names)
    return groups


def _same(symbol: str, n: int) -> object:
    import pyarrow as pa

    return pa.array([symbol] * n, pa.string())


def embedded_wall(replay: Path, symbols: list[str]) -> float:
    with tempfile.TemporaryDirectory() as lake:
        app = build_embedded(Settings.from_env({}, lake_dir=lake), provider=ReplayProvider(replay))
        started = time.perf_counter()
        status = run_embedded(
            app, IngestRequest(kind="manual", run_id="embedded", symbols=tuple(symbols))
        )
        wall = time.perf_counter() - started
    assert status.complete and all(o.status == "ok" for o in status.outcomes()), status
    return wall


def stack_wall(app: Any, info: stack.StackInfo, symbols: list[str], run_id: str) -> float:
    """Publish one request; done when the run is complete and the weekly and profile functions
    have each logged a build for every symbol. Completion is watched in the functions' log
    files, not by polling the emulators, so the watching adds no load to what is measured."""
    offsets = log_offsets(info)
    started = time.perf_counter()
    app.bus.publish(
        app.settings.ingest_requests_topic,
        IngestRequest(kind="manual", run_id=run_id, symbols=tuple(symbols)).to_json(),
    )
    want = {daily_name(s) for s in symbols}
    while not all(want <= built(info, fn, offsets) for fn in ("weekly", "profile")):
        time.sleep(0.02)
    wall = time.perf_counter() - started
    status = app.state.get_run(run_id)
    assert status is not None and status.complete, status
    assert all(o.status == "ok" for o in status.outcomes())
    return wall


def _lines(info: stack.StackInfo, since: dict[str, int]) -> Iterator[dict[str, Any]]:
    for c in info.components:
        if c.name not in since:
            continue
        with open(c.log, "rb") as fh:
            fh.seek(since[c.name])
            for line in fh:
                if line.startswith(b"{") and line.endswith(b"\n"):
                    yield json.loads(line)


def built(info: stack.StackInfo, function: str, since: dict[str, int]) -> set[str]:
    return {
        x["object"]
        for x in _lines(info, since)
        if x.get("function") == function and x.get("result") == "built"
    }


def log_offsets(info: stack.StackInfo) -> dict[str, int]:
    return {c.name: Path(c.log).stat().st_size for c in info.components if c.name.startswith("fn-")}


def breakdown(info: stack.StackInfo, since: dict[str, int]) -> dict[str, dict[str, float]]:
    """Per function: summed ms per field over the events logged after `since`."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for rec in _lines(info, since):
        if rec.get("outcome") != "done":
            continue
        fn = rec["function"]
        out[fn]["events"] += 1
        for key, value in rec.items():
            if key.endswith("ms"):
                out[fn][key] += value
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=220)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    n = args.symbols
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        replay = root / "replay"
        groups = write_recordings(replay, n, args.reps + 1)  # +1: a warm-up group
        info = stack.up(root / "stack", {"BARLAKE_PROVIDER": f"replay:{replay}"})
        try:
            with stack.environ(info.env):
                app = build_app(Settings.from_env(info.env))
                stack_wall(app, info, groups[0][:20], "warmup")  # first events load modules
                embedded, cloud, parts = [], [], []
                for r, symbols in enumerate(groups[1:], 1):
                    embedded.append(embedded_wall(replay, symbols))
                    offsets = log_offsets(info)
                    cloud.append(stack_wall(app, info, symbols, f"bench-{r}"))
                    parts.append(breakdown(info, offsets))
        finally:
            stack.down(root / "stack")
    e, c = statistics.median(embedded), statistics.median(cloud)
    overhead = (c - e) / n * 1000
    print(f"pipeline: {n} symbols × 20 years, {args.reps} repetitions (medians)\n")
    print("| run | wall s (median) | ms/symbol | runs |")
    print("|---|---|---|---|")
    print(f"| embedded (baseline) | {e:.2f} | {e / n * 1000:.1f} | {fmt(embedded)} |")
    print(f"| local cloud stack | {c:.2f} | {c / n * 1000:.1f} | {fmt(cloud)} |")
    print(
        f"\noverhead per symbol: {overhead:.1f} ms (goal ≤ {GOAL_MS:.0f} ms: "
        f"{verdict(overhead <= GOAL_MS)}); stack/embedded {c / e:.2f}×\n"
    )
    print("breakdown, ms per symbol summed over events (median over repetitions):\n")
    fields = ["ms", "fetch_ms", "storage_ms", "state_ms", "bus_ms"]
    print("| function | events | total | fetch | storage | state | bus | own compute |")
    print("|---|---|---|---|---|---|---|---|")
    for fn in ("dispatch", "ingest", "weekly", "profile"):
        med = {f: statistics.median(p.get(fn, {}).get(f, 0.0) for p in parts) / n for f in fields}
        events = statistics.median(p.get(fn, {}).get("events", 0) for p in parts)
        own = med["ms"] - sum(med[f] for f in fields[1:])
        cells = " | ".join(f"{med[f]:.2f}" for f in fields)
        print(f"| {fn} | {events:.0f} | {cells} | {own:.2f} |")


def fmt(values: list[float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    main()
