"""Analytics endpoints through the real HTTP server, beside the bars endpoint in the same run.

Server: functions/api/main.py under functions-framework (gunicorn, as Cloud Run runs it),
BARLAKE_CACHE=memory (the embedded default), over a lake of synthetic 20-year symbols
(bench/_data.py: ~5,030 sessions each, a 4:1 split, ~80 dividends).

Cases, each answering the whole 20 years as JSON (about 5,030 rows), in rounds that alternate
case by case (machine load drifts hit all alike), one client, in sequence:
- bars      GET /v1/bars/SYM?start=…                         (the baseline)
- rsi       GET /v1/indicators/SYM?name=rsi&timeperiod=14&start=…
- macd      GET /v1/indicators/SYM?name=macd&start=…          (3 columns)
- bbands    GET /v1/indicators/SYM?name=bbands&start=…        (5 columns)
- combo     GET /v1/indicators/SYM?names=rsi:14,macd,bbands&start=…
- stats     GET /v1/analytics/SYM?start=…                     (against a 20-year benchmark)
Miss: a start date never asked before (before the first bar, so still the whole history), so
every request builds its body from storage; hit: the same URL again (the in-process cache).
Figures: the handler's own time (Server-Timing) and the client's latency, medians; the ratio
to the bars case of the same kind. Also the api function's cold import (`python -X importtime
-c "import main"`, median of 5; goal ≤ 0.5 s: TA-Lib must not load with it) and the first
indicator request of a fresh process (where TA-Lib does load) beside its first bars request.

Run: ./uvw run python bench/bench_analytics.py [--rounds 7] [--per-round 5] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import REPO, Row, verdict
from bench_api import _top_level_import_seconds, build_lake

from barlake.emulators import start_function

FUNCTIONS = REPO / "functions"
IMPORT_GOAL_S = 0.5
CASES = {
    "bars": "/v1/bars/{s}?start={d}",
    "rsi": "/v1/indicators/{s}?name=rsi&timeperiod=14&start={d}",
    "macd": "/v1/indicators/{s}?name=macd&start={d}",
    "bbands": "/v1/indicators/{s}?name=bbands&start={d}",
    "combo": "/v1/indicators/{s}?names=rsi:14,macd,bbands&start={d}",
    "stats": "/v1/analytics/{s}?start={d}",
}
_TIMING = re.compile(r"app;dur=([0-9.]+)")


def get(conn: http.client.HTTPConnection, path: str) -> tuple[float, float, int, str]:
    t0 = time.perf_counter()
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    elapsed = (time.perf_counter() - t0) * 1000
    if resp.status != 200:
        raise RuntimeError(f"{path}: HTTP {resp.status} {body[:200]!r}")
    m = _TIMING.search(resp.getheader("Server-Timing") or "")
    return elapsed, float(m.group(1)) if m else float("nan"), len(body), resp.getheader("X-Cache")


def measure(port: int, symbols: list[str], rounds: int, per_round: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    first = date(1980, 1, 1)
    k = 0
    out: dict[str, dict[str, list[float]]] = {}
    sizes: dict[str, int] = {}
    for name in CASES:
        for kind in ("miss", "hit"):
            out[f"{name}-{kind}"] = {"client": [], "server": []}
    for tpl in CASES.values():  # warm every code path (imports, TA-Lib) once
        get(conn, tpl.format(s=symbols[0], d=first - timedelta(days=1)))
    for _ in range(rounds):
        for name, tpl in CASES.items():
            for _ in range(per_round):
                sym = symbols[k % len(symbols)]
                path = tpl.format(s=sym, d=first + timedelta(days=k))
                k += 1
                client, server, size, tier = get(conn, path)
                assert tier == "miss", (path, tier)
                out[f"{name}-miss"]["client"].append(client)
                out[f"{name}-miss"]["server"].append(server)
                sizes[name] = size
                client, server, _, tier = get(conn, path)
                assert tier == "hit-l1", (path, tier)
                out[f"{name}-hit"]["client"].append(client)
                out[f"{name}-hit"]["server"].append(server)
    conn.close()
    return {
        "cases": {
            k: {m: statistics.median(v[m]) for m in ("client", "server")} for k, v in out.items()
        },
        "sizes": sizes,
        "requests": 2 * k,
    }


def cold(lake: Path, symbol: str, runs: int = 5) -> dict[str, Any]:
    cwd = FUNCTIONS / "api"
    env = {**os.environ, "BARLAKE_LAKE_DIR": str(lake), "PYTHONDONTWRITEBYTECODE": "1"}
    env["BARLAKE_CACHE"] = "memory"
    env.pop("K_SERVICE", None)
    imports = []
    for _ in range(runs):
        r = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import main"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        imports.append(_top_level_import_seconds(r.stderr))
    bare = []  # the floor: functions-framework (Flask) alone, measured the same way
    for _ in range(runs):
        r = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import functions_framework"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        bare.append(_top_level_import_seconds(r.stderr))
    probe = """
import json, sys, time
import main
from barlake.api.function import get_api
api = get_api()
def first(path, query):
    t = time.perf_counter()
    reply = api.handle({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query})
    assert reply.status == 200, reply.body[:200]
    return time.perf_counter() - t
bars = first("/v1/bars/%(s)s", "")
talib_before = "talib" in sys.modules
rsi = first("/v1/indicators/%(s)s", "name=rsi")
print(json.dumps({"bars": bars, "rsi": rsi, "talib_at_start": talib_before,
                  "pandas": "pandas" in sys.modules}))
"""
    probes = []
    for _ in range(3):
        r = subprocess.run(
            [sys.executable, "-c", probe % {"s": symbol}],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        probes.append(json.loads(r.stdout.strip().splitlines()[-1]))
    return {
        "import_s": statistics.median(imports),
        "bare_import_s": statistics.median(bare),
        "first_bars_s": statistics.median(p["bars"] for p in probes),
        "first_rsi_s": statistics.median(p["rsi"] for p in probes),
        "talib_at_start": any(p["talib_at_start"] for p in probes),
        "pandas": any(p["pandas"] for p in probes),
    }


def run(rounds: int = 7, per_round: int = 5, symbols: int = 6) -> list[Row]:
    root = Path(tempfile.mkdtemp(prefix="barlake-bench-analytics-"))
    lake = root / "lake"
    names = build_lake(lake, symbols)
    env = {
        "BARLAKE_LAKE_DIR": str(lake),
        "BARLAKE_CACHE": "memory",
        "BARLAKE_BENCHMARK_SYMBOL": names[-1],
    }
    server = start_function("api", FUNCTIONS / "api", "http", root / "logs", env)
    try:
        port = int(server.url.rsplit(":", 1)[1])
        res = measure(port, names[:-1], rounds, per_round)
    finally:
        server.stop()
    c = cold(lake, names[0])
    cases = res["cases"]
    sizes = {k: v // 1024 for k, v in res["sizes"].items()}
    rows: list[Row] = []
    for kind in ("miss", "hit"):
        base = cases[f"bars-{kind}"]
        for name in CASES:
            got = cases[f"{name}-{kind}"]
            rows.append(
                Row(
                    f"{name} 20 y JSON, {kind} ({sizes[name]} KiB): handler / client",
                    f"{got['server']:.2f} / {got['client']:.2f} ms",
                    f"bars {base['server']:.2f} / {base['client']:.2f} ms",
                    f"{got['server'] / base['server']:.2f}×",
                    "—",
                    "—",
                )
            )
    rows.append(
        Row(
            "api cold import (python -X importtime, median of 5)",
            f"{c['import_s']:.3f} s",
            f"functions-framework alone {c['bare_import_s']:.3f} s",
            f"{c['import_s'] / c['bare_import_s']:.2f}×",
            f"≤ {IMPORT_GOAL_S} s, no TA-Lib",
            verdict(c["import_s"] <= IMPORT_GOAL_S and not c["talib_at_start"]),
        )
    )
    rows.append(
        Row(
            "first request of a fresh instance: 20 y RSI (loads TA-Lib), after 20 y bars",
            f"{c['first_rsi_s'] * 1000:.0f} ms",
            f"bars {c['first_bars_s'] * 1000:.0f} ms",
            f"{c['first_rsi_s'] / c['first_bars_s']:.2f}×",
            "—",
            "—",
            f"pandas loaded: {c['pandas']}",
        )
    )
    print(f"{res['requests']} timed requests")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--per-round", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="2 rounds of 2 (a smoke run)")
    args = ap.parse_args()
    rounds, per = (2, 2) if args.quick else (args.rounds, args.per_round)
    rows = run(rounds, per)
    print("| metric | measured | baseline | ratio | goal | verdict |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        note = f" ({r.note})" if r.note else ""
        cells = (r.metric, r.measured, r.baseline, r.ratio, r.goal, f"{r.verdict}{note}")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
