"""10,000 symbols a day within Yahoo's limits: requests per symbol, 429s, wall time.

Run: ./uvw run python bench/bench_scale.py [--quick] [--symbols N] [--scale K] [--no-stack]

Against the simulated Yahoo (barlake.yahoo_sim: the real yfinance code path, Yahoo's rate
limit answered with 429s), through the embedded pipeline (dispatch → ingest → weekly + profile,
SQLite, local folder):

1. a first load of N symbols (short histories: the bench measures requests, not bytes);
2. the daily update of all N the next session, on a copy of that lake, four ways: the request
   budget (quotes for 100 symbols a request, chart requests only where needed) and the
   baseline (one chart request per symbol, BARLAKE_YAHOO_QUOTES=off), each at Yahoo's ~60
   requests/min and at 2,000 requests/hour. The day has events: 0.5 % of symbols split, 1 %
   go ex-dividend, 0.2 % are delisted.

Time runs K× faster on both sides (`--scale`, default 60): the simulated Yahoo's window is
60/K s and the pacer's budget K× larger, so "60 a minute" is 60 a second here. Requests, 429s
and failures do not depend on the clock; minutes are converted back: the budget's share of
the wall time is requests ÷ the paced rate (real minutes), the rest is our own compute,
measured in real seconds. minutes_for_10k = requests_per_symbol × 10,000 ÷ paced rate +
compute per symbol × 10,000 (the embedded run does both in turn; the cloud overlaps them,
so this is an upper bound).

3. (unless --no-stack) a scaled-down run through the emulator stack: fake-gcs-server, the
   Pub/Sub and Firestore emulators, one functions-framework process per function plus extra
   ingest processes behind a round-robin push proxy, all pacing through one redis-server
   budget (BARLAKE_PACER=redis) against the simulated Yahoo over HTTP: the first load then the
   daily update, requests per symbol and the most requests seen in any window.

Fidelity, measured: after each daily update every stored history is compared with what a
full chart fetch gives today; the quote path leaves dividends' adj_close rescale to the
rolling audit (issue #9), and the table says how many symbols that is.

--quick: N = 200 (and 30 through the stack), ≤ 5 minutes on 2 cores; the 10,000-symbol figure
is extrapolated from the measured slice. The last line is
`requests_per_symbol=R rate_limit_failures=F limit_exceeded=E minutes_for_10k=M` for the
request budget at 60 requests/min.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import threading
import time
import urllib.request
import warnings
from collections import Counter
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import cycle
from pathlib import Path
from typing import Any

warnings.filterwarnings("ignore")

from barlake.adapters.memory_pacer import MemoryPacer  # noqa: E402
from barlake.adapters.yfinance_provider import YFinanceProvider  # noqa: E402
from barlake.config import Settings, build_embedded, run_embedded  # noqa: E402
from barlake.core.pacing import Budget  # noqa: E402
from barlake.messages import IngestRequest  # noqa: E402
from barlake.yahoo_sim import SimTransport, SimulatedYahoo, utc_close  # noqa: E402

warnings.simplefilter("ignore")  # yfinance's pandas deprecations, after its imports

DAY1, DAY2 = date(2025, 6, 12), date(2025, 6, 13)
HISTORY_START = date(2025, 1, 2)
LIMITS = {"60/min": 60.0, "2000/h": 2000 / 60}
HEADROOM = 55 / 60  # BARLAKE_YAHOO_REQUESTS_PER_MINUTE's default against Yahoo's ~60
TARGET = 10_000


@dataclass
class Result:
    name: str
    symbols: int
    requests: int
    charts: int
    quotes: int
    limited: int  # 429s Yahoo answered
    failed_rate: int  # symbols still failed as rate-limited at the end
    failed: int  # symbols failed for any reason at the end
    wall_s: float
    waited_s: float
    max_window: int
    limit: int
    paced_per_min: float
    stale: int  # symbols whose stored history differs from a full chart fetch

    @property
    def per_symbol(self) -> float:
        return self.requests / self.symbols

    def minutes_for(self, n: int) -> float:
        budget_min = self.per_symbol * n / self.paced_per_min
        compute_s = max(0.0, self.wall_s - self.waited_s) / self.symbols
        return budget_min + compute_s * n / 60


def symbols(n: int) -> list[str]:
    return [f"Z{i:05d}" for i in range(n)]


def plant_events(sim: SimulatedYahoo, names: list[str]) -> dict[str, set[str]]:
    split = {s for i, s in enumerate(names) if i % 200 == 3}
    dividend = {s for i, s in enumerate(names) if i % 100 == 50}
    delisted = {s for i, s in enumerate(names) if i % 500 == 7}
    for s in split:
        sim.split(s, DAY2, 2.0)
    for s in dividend:
        sim.dividend(s, DAY2, 0.5)
    sim.delisted = set(delisted)
    return {"split": split, "dividend": dividend, "delisted": delisted}


def make_lake(
    folder: Path, sim: SimulatedYahoo, per_min: float, scale: float, quotes: bool, cache: Path
) -> tuple[Any, MemoryPacer]:
    paced = per_min * HEADROOM
    pacer = MemoryPacer(
        {"yahoo": Budget.per_minute(paced * scale)}, jitter_s=0.25 / scale, max_wait_s=3600
    )
    provider = YFinanceProvider(
        SimTransport(sim).session(),
        cache_dir=cache,
        pacer=pacer,
        concurrency=4,
        clock=lambda: utc_close(sim),
        seed_timezones=True,
    )
    settings = Settings.from_env(
        {}, lake_dir=str(folder), yahoo_quotes="on" if quotes else "off", batch_size="50"
    )
    return build_embedded(settings, provider=provider, clock=lambda: utc_close(sim)), pacer


def measure(
    name: str,
    folder: Path,
    sim: SimulatedYahoo,
    names: list[str],
    per_min: float,
    scale: float,
    quotes: bool,
    cache: Path,
    **request: Any,
) -> Result:
    app, pacer = make_lake(folder, sim, per_min, scale, quotes, cache)
    sim.limit, sim.window_s = round(per_min), 60.0 / scale
    before, arrivals = Counter(sim.stats), len(sim.arrivals)
    t0 = time.perf_counter()
    status = run_embedded(
        app, IngestRequest(kind="manual", run_id=name, symbols=tuple(names), **request)
    )
    wall = time.perf_counter() - t0
    spent = Counter({k: sim.stats[k] - before[k] for k in sim.stats})
    window = sorted(sim.arrivals[arrivals:])
    best, lo = 0, 0
    for hi, t in enumerate(window):
        while window[lo] <= t - sim.window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    outcomes = status.outcomes()
    stale = 0
    if request.get("start") is None:
        for s in names:
            if s in sim.delisted:
                continue
            stored = app.read.bars(s).table
            want = sim.bars(s)
            if (
                stored.column("adj_close").to_pylist()[-5:] != want["adjclose"][-5:]
                or stored.column("close").to_pylist()[-5:] != want["close"][-5:]
            ):
                stale += 1
    return Result(
        name,
        len(names),
        spent["api"],
        spent["chart"],
        spent["quote"],
        spent["rate_limited"],
        sum(1 for o in outcomes if o.status == "failed" and o.error_kind == "rate_limited"),
        sum(1 for o in outcomes if o.status == "failed"),
        wall,
        pacer.waited_s,
        best,
        sim.limit,
        per_min * HEADROOM,
        stale,
    )


def embedded_part(n: int, scale: float, work: Path) -> dict[str, Result]:
    names = symbols(n)
    # Yahoo's answers take ~200 ms; scaled with the clock like everything else.
    sim = SimulatedYahoo(today=DAY1, history_start=HISTORY_START, latency_s=0.2 / scale)
    cache = work / "yf-cache"
    loaded = work / "loaded"
    results = {
        "first load": measure(
            "load", loaded, sim, names, 60.0, scale, True, cache, start=HISTORY_START
        )
    }
    sim.today = DAY2
    plant_events(sim, names)
    for limit, per_min in LIMITS.items():
        for quotes, label in ((True, "request budget"), (False, "baseline: 1 chart/symbol")):
            folder = work / f"daily-{per_min:.0f}-{quotes}"
            shutil.copytree(loaded, folder)
            key = f"daily update, {label}, {limit}"
            results[key] = measure(key, folder, sim, names, per_min, scale, quotes, cache)
    return results


# --------------------------------------------------------------------------- the stack


class RoundRobin:
    """A push endpoint spreading deliveries over several ingest processes (as Cloud Run
    spreads them over instances)."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._next: Any = None
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, answer = proxy.forward(body)
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def forward(self, body: bytes) -> tuple[int, bytes]:
        with self._lock:
            if self._next is None:
                self._next = cycle(self.targets)
            target = next(self._next)
        request = urllib.request.Request(
            target.rstrip("/") + "/",
            data=body,
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=600) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def close(self) -> None:
        self.server.shutdown()


def stack_part(n: int, scale: float, work: Path, ingest_processes: int) -> dict[str, Any]:
    from barlake import stack
    from barlake.config import build_app
    from barlake.emulators import start_function
    from barlake.localredis import start_redis
    from barlake.yahoo_sim import SimServer

    names = symbols(n)
    per_min = LIMITS["60/min"]
    sim = SimulatedYahoo(
        today=DAY1,
        history_start=HISTORY_START,
        limit=round(per_min),
        window_s=60 / scale,
        latency_s=0.2 / scale,
    )
    server = SimServer(sim)
    redis = start_redis(work / "redis")
    proxy = RoundRobin()
    extra: list[Any] = []
    root = work / "stack"
    env = {
        "BARLAKE_PROVIDER": f"yahoo-sim:{server.url}",
        "BARLAKE_PACER": "redis",
        "BARLAKE_REDIS_URL": redis.env["BARLAKE_REDIS_URL"],
        "BARLAKE_YAHOO_REQUESTS_PER_MINUTE": f"{per_min * HEADROOM * scale:g}",
        "BARLAKE_PACER_JITTER_MS": f"{250 / scale:.0f}",
        "BARLAKE_PACER_INSTANCES": str(ingest_processes),
        "BARLAKE_BATCH_SIZE": "10",
    }

    def endpoint(name: str, url: str) -> str:
        if name != "ingest":
            return url
        proxy.targets.append(url)
        return proxy.url

    out: dict[str, Any] = {"processes": ingest_processes, "symbols": n}
    try:
        info = stack.up(root, env, push_endpoint=endpoint)
        ingest_env = {**info.env, "K_SERVICE": "ingest"}
        source = stack.FUNCTIONS_DIR / "ingest"
        for i in range(ingest_processes - 1):
            # its own log folder and /tmp (yfinance's caches), as a Cloud Run instance has
            tmp = root / f"tmp-{i}"
            tmp.mkdir(parents=True, exist_ok=True)
            logs = root / "logs" / f"ingest-{i + 2}"
            fn = start_function(
                "ingest", source, "cloudevent", logs, {**ingest_env, "TMPDIR": str(tmp)}
            )
            extra.append(fn)
            proxy.targets.append(fn.url)
        with stack.environ(info.env):
            app = build_app(Settings.from_env(info.env))
            for run_id, kw in (("load", {"start": HISTORY_START}), ("daily", {})):
                if run_id == "daily":
                    sim.today = DAY2
                    plant_events(sim, names)
                before, t0 = sim.stats["api"], time.perf_counter()
                arrivals = len(sim.arrivals)
                request = IngestRequest(kind="manual", run_id=run_id, symbols=tuple(names), **kw)
                app.bus.publish(app.settings.ingest_requests_topic, request.to_json())
                deadline = time.monotonic() + 900
                while time.monotonic() < deadline:
                    status = app.state.get_run(run_id)
                    if status is not None and status.complete:
                        break
                    time.sleep(0.5)
                else:
                    raise RuntimeError(f"stack run {run_id} did not complete in 900 s")
                window = sorted(sim.arrivals[arrivals:])
                best, lo = 0, 0
                for hi, t in enumerate(window):
                    while window[lo] <= t - sim.window_s:
                        lo += 1
                    best = max(best, hi - lo + 1)
                failed = [o for o in status.outcomes() if o.status == "failed"]
                out[run_id] = {
                    "requests_per_symbol": (sim.stats["api"] - before) / n,
                    "max_in_window": best,
                    "limit": sim.limit,
                    "wall_s": time.perf_counter() - t0,
                    "failed": len(failed),
                    "rate_limited_failures": sum(
                        1 for o in failed if o.error_kind == "rate_limited"
                    ),
                }
        out["limit_exceeded"] = sim.stats["rate_limited"]
    finally:
        for fn in extra:
            fn.stop()
        stack.down(root)
        proxy.close()
        redis.stop()
        server.stop()
    return out


# --------------------------------------------------------------------------- report


def report(results: dict[str, Result], scale: float) -> None:
    print(f"\nembedded pipeline, simulated Yahoo, time ×{scale:g} (minutes below are real minutes)")
    header = (
        "| run | symbols | req/symbol | charts | quotes | max req in a window / limit | 429s "
        "| failed (rate-limited) | floor min/10k | est. min/10k | history ≠ chart |"
    )
    print(header)
    print("|" + "---|" * 11)
    for key, r in results.items():
        floor = r.per_symbol * TARGET / (r.limit)
        print(
            f"| {key} | {r.symbols} | {r.per_symbol:.3f} | {r.charts} | {r.quotes} "
            f"| {r.max_window} / {r.limit} | {r.limited} | {r.failed} ({r.failed_rate}) "
            f"| {floor:.1f} | {r.minutes_for(TARGET):.1f} | {r.stale} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--symbols", type=int)
    parser.add_argument("--stack-symbols", type=int)
    parser.add_argument("--scale", type=float, default=60.0)
    parser.add_argument("--ingest-processes", type=int, default=3)
    parser.add_argument("--no-stack", action="store_true")
    args = parser.parse_args()
    n = args.symbols or (200 if args.quick else TARGET)
    n_stack = args.stack_symbols or (30 if args.quick else 200)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        results = embedded_part(n, args.scale, Path(tmp))
        report(results, args.scale)
        if not args.no_stack:
            try:
                stacked = stack_part(n_stack, args.scale, Path(tmp), args.ingest_processes)
                print("\nemulator stack, one redis budget shared by", end=" ")
                print(f"{stacked['processes']} ingest processes:")
                print(json.dumps(stacked, indent=1))
            except Exception as exc:  # emulators missing: say so, the embedded figures stand
                print(f"\nemulator stack part skipped: {type(exc).__name__}: {exc}")
    budget = results["daily update, request budget, 60/min"]
    base = results["daily update, baseline: 1 chart/symbol, 60/min"]
    print(
        f"\nbaseline (same run): {base.per_symbol:.3f} requests/symbol, "
        f"{base.minutes_for(TARGET):.1f} min for 10k; request budget: "
        f"{budget.per_symbol:.3f} requests/symbol ({base.per_symbol / budget.per_symbol:.0f}× "
        f"fewer), goals ≤ 0.3 requests/symbol and ≤ 60 min: "
        f"{'PASS' if budget.per_symbol <= 0.3 and budget.minutes_for(TARGET) <= 60 else 'MISS'}"
    )
    print(f"bench wall time {time.perf_counter() - t0:.0f} s")
    failures = sum(r.failed_rate for r in results.values())
    exceeded = sum(r.limited for r in results.values())
    print(
        f"requests_per_symbol={budget.per_symbol:.3f} rate_limit_failures={failures} "
        f"limit_exceeded={exceeded} minutes_for_10k={budget.minutes_for(TARGET):.1f}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
