"""The read API through the real HTTP server, beside a bare functions-framework handler.

Servers (each `python -m functions_framework`, gunicorn, as Cloud Run runs a function):
- bare: a hello handler (`return "hello"`): the ceiling any function reaches here; and the
  same handler returning as many bytes as a 1-year JSON answer (what the payload alone costs);
- api: functions/api/main.py, BARLAKE_CACHE=redis (a real redis-server), in-process L1 on;
- api-no-l1: the same with BARLAKE_CACHE_MEMORY_MB=0, so every body comes from Redis;
- api-memory: BARLAKE_CACHE=memory, the embedded default;
over a lake of 40 synthetic 20-year symbols (bench/_data.py).

Cases, each run in short rounds that alternate with the bare handler's (machine load drifts
hit both alike); clients are separate processes on keep-alive connections over bare sockets
(http.client would cost as much CPU as the server does):
- L1 hit      GET /v1/bars/SYM?limit=252 (1 year, JSON), 10 symbols, warm;
- Redis hit   the same on api-no-l1; memory-cache hit: the same on api-memory;
- miss 1y     a new 365-day window per request (every request builds its body from storage);
- miss 20y    full 20-year history as Parquet, a new (earlier) start per request, so the body
              is decoded and re-encoded;
- batch       GET /v1/bars?symbols=20 symbols&limit=252, warm.
Figures: requests/s (median of rounds), client latency p50/p99, the handler's own time (the
API's Server-Timing header, measured with one client so that it does not include waiting
behind other requests), the server's CPU per request under load (its processes, plus
redis-server's, from /proc), and the ratio to the bare handler's requests/s.

Also: cold import of the api function (`python -X importtime -c "import main"`, median of 5),
the first request after it, and the cache hit rate on a realistic access pattern (several API
instances sharing Redis, Zipf-popular symbols, a daily write wave; every answer checked fresh).

Run: ./uvw run python bench/bench_api.py [--seconds 1.5] [--rounds 5] [--clients 3] [--quick]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import REPO, Row, synthetic_universe, verdict

from barlake.emulators import Emulator, start_function

FUNCTIONS = REPO / "functions"
HIT_GOAL = 0.8
MISS_GOAL_MS = 5.0
IMPORT_GOAL_S = 0.5
HELLO = """import os

import functions_framework

BODY = b"x" * int(os.environ.get("HELLO_BYTES", "5"))


@functions_framework.http
def hello(request):
    return BODY
"""


# --------------------------------------------------------------------------- load generator


def _path(kind: str, k: int, symbols: list[str]) -> str:
    """The k-th request path of a case (k unique across clients and rounds)."""
    if kind in ("bare", "bare-body"):
        return "/"
    if kind in ("l1", "redis"):
        return f"/v1/bars/{symbols[k % 10]}?limit=252"
    if kind == "batch":
        return f"/v1/bars?symbols={','.join(symbols[:20])}&limit=252"
    sym = symbols[k % len(symbols)]
    n = k // len(symbols)
    if kind == "miss-json":
        start = date(2006, 1, 1) + timedelta(days=n)
        return f"/v1/bars/{sym}?start={start}&end={start + timedelta(days=364)}"
    start = date(1975, 1, 1) + timedelta(days=n)  # before the first bar: the whole history
    return f"/v1/bars/{sym}?format=parquet&start={start}"


_SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length: *([0-9]+)", re.IGNORECASE)


def _recv(sock: socket.socket) -> bytes:
    data = sock.recv(1 << 18)
    if not data:
        raise RuntimeError("the server closed a keep-alive connection mid-request")
    return data


def _client(
    port: int, kind: str, symbols: list[str], start_at: float, seconds: float, k0: int, step: int
) -> tuple[int, list[float], list[float]]:
    """One keep-alive connection on a bare socket: a client that costs little CPU (http.client
    costs about as much as the server per request), so the server is what gets measured."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies: list[float] = []
    server: list[float] = []
    k, done, buf = k0, 0, b""
    while time.time() < start_at:
        time.sleep(0.001)
    deadline = start_at + seconds
    while time.time() < deadline:
        t0 = time.perf_counter()
        path = _path(kind, k, symbols)
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        while b"\r\n\r\n" not in buf:
            buf += _recv(sock)
        head, _, buf = buf.partition(b"\r\n\r\n")
        length = _CONTENT_LENGTH.search(head)
        size = int(length.group(1)) if length else 0
        while len(buf) < size:
            buf += _recv(sock)
        buf = buf[size:]
        if head[9:12] != b"200":
            raise RuntimeError(f"{kind}: {head[:12]!r} for {path}")
        latencies.append(time.perf_counter() - t0)
        if m := _SERVER_TIMING.search(head.decode("latin-1")):
            server.append(float(m.group(1)))
        done += 1
        k += step
    sock.close()
    return done, latencies, server


def group_cpu_seconds(pgid: int) -> float:
    """CPU (user + system) of every process in a process group: the server's arbiter, its
    worker(s), or redis-server."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 (pgrp), after the name
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


@dataclass
class Case:
    name: str
    kind: str
    port: int
    rps: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)  # unloaded: one client, in sequence
    pgids: tuple[int, ...] = ()  # processes whose CPU a request costs (server, redis-server)
    cpu_ms: list[float] = field(default_factory=list)  # per request, loaded rounds
    next_k: int = 0

    @property
    def median_rps(self) -> float:
        return statistics.median(self.rps) if self.rps else 0.0

    def pct(self, values: list[float], q: float, scale: float = 1.0) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * scale


def run_round(
    pool: ProcessPoolExecutor,
    case: Case,
    symbols: list[str],
    seconds: float,
    clients: int,
    *,
    unloaded: bool = False,
) -> None:
    """Loaded: `clients` processes at once (requests/s, client latency). Unloaded: one client
    (the handler's own time, from Server-Timing, without queueing behind other requests)."""
    n = 1 if unloaded else clients
    cpu_before = sum(group_cpu_seconds(g) for g in case.pgids)
    start_at = time.time() + 0.3
    futures = [
        pool.submit(_client, case.port, case.kind, symbols, start_at, seconds, case.next_k + i, n)
        for i in range(n)
    ]
    results = [f.result() for f in futures]
    case.next_k += (max(r[0] for r in results) + 1) * n
    if unloaded:
        for _, _, srv in results:
            case.server_ms += srv
        return
    done = sum(r[0] for r in results)
    case.rps.append(done / seconds)
    if case.pgids and done:
        cpu = sum(group_cpu_seconds(g) for g in case.pgids) - cpu_before
        case.cpu_ms.append(cpu / done * 1000)
    for _, lat, _ in results:
        case.latencies += lat


# --------------------------------------------------------------------------- the lake


def build_lake(root: Path, count: int) -> list[str]:
    from barlake.adapters.local_store import LocalObjectStore
    from barlake.core.codec import encode_daily
    from barlake.core.layout import daily_name

    store = LocalObjectStore(root, "barlake-raw")
    symbols = []
    for data in synthetic_universe(count):
        store.write(daily_name(data.symbol), encode_daily(data.bars, data.actions))
        symbols.append(data.symbol)
    return symbols


def warm(port: int, paths: list[str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for path in paths:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        if resp.status != 200:
            raise RuntimeError(f"warm-up {path}: HTTP {resp.status}")
    conn.close()


def fetch_body(lake: Path, symbol: str) -> bytes:
    """The 1-year JSON body, built in-process: the bare handler returns as many bytes."""
    from barlake.api.app import build_api
    from barlake.config import Settings

    api = build_api(Settings.from_env({}, lake_dir=str(lake), cache="none"))
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": f"/v1/bars/{symbol}", "QUERY_STRING": "limit=252"}
    return api.handle(env).body


# --------------------------------------------------------------------------- cold import


def _top_level_import_seconds(stderr: str) -> float:
    total = 0
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, _, cumulative, name = (part for part in re.split(r"\|", line.replace(":", "|", 1)))
        if name.startswith(" ") and not name.startswith("  "):
            total += int(cumulative)
    return total / 1e6


def cold_import(lake: Path, redis_url: str, runs: int = 5) -> dict[str, Any]:
    cwd = FUNCTIONS / "api"
    env = {**os.environ, "BARLAKE_LAKE_DIR": str(lake), "PYTHONDONTWRITEBYTECODE": "1"}
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
    probe = """
import json, sys, time
t0 = time.perf_counter()
import main
t1 = time.perf_counter()
from barlake.api.function import get_api
reply = get_api().handle({"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/bars/%s",
                          "QUERY_STRING": "limit=252"})
t2 = time.perf_counter()
assert reply.status == 200, reply.status
print(json.dumps({"import": t1 - t0, "first": t2 - t1,
                  "pandas": "pandas" in sys.modules, "yfinance": "yfinance" in sys.modules}))
"""
    firsts: dict[str, list[dict[str, Any]]] = {"memory": [], "redis": []}
    symbol = synthetic_universe(1)[0].symbol
    for cache in firsts:
        extra = {"BARLAKE_CACHE": cache, "BARLAKE_REDIS_URL": redis_url}
        for _ in range(3):
            r = subprocess.run(
                [sys.executable, "-c", probe % symbol],
                cwd=cwd,
                env={**env, **extra},
                capture_output=True,
                text=True,
                check=True,
            )
            firsts[cache].append(json.loads(r.stdout.strip().splitlines()[-1]))
    return {
        "import_s": statistics.median(imports),
        "first_memory_s": statistics.median(f["first"] for f in firsts["memory"]),
        "first_redis_s": statistics.median(f["first"] for f in firsts["redis"]),
        "heavy": any(f["pandas"] or f["yfinance"] for fs in firsts.values() for f in fs),
    }


# --------------------------------------------------------------------------- hit rate


MIX = [  # (weight, path template): what dashboards and notebooks ask for
    (0.55, "/v1/bars/{s}?limit=252"),
    (0.15, "/v1/bars/{s}?limit=30"),
    (0.10, "/v1/bars/{s}?interval=1wk&limit=104"),
    (0.10, "/v1/bars/{s}?format=parquet"),
    (0.05, "/v1/bars/{s}?adjust=total&start=2020-01-01"),
    (0.05, "/v1/bars?symbols={hot}&limit=20"),
]


def hit_rate(
    root: Path, redis_url: str, symbols: int, days: int, reads: int, instances: int
) -> dict[str, Any]:
    """Several API instances (own L1 each) share one Redis; a writer appends a bar to every
    symbol once a day (the write wave). Every answer's generation is checked against storage."""
    import numpy as np
    import pyarrow as pa

    from barlake.api.app import build_api
    from barlake.config import Settings, build_app
    from barlake.core.codec import decode_daily, encode_daily
    from barlake.core.layout import daily_name

    lake = root / "hitrate"
    names = build_lake(lake, symbols)
    env = {"lake_dir": str(lake), "cache": "redis", "redis_url": redis_url}
    writer = build_app(Settings.from_env({}, **env))
    apis = [build_api(Settings.from_env({}, **env)) for _ in range(instances)]
    rng = random.Random(7)
    weights = [1 / (i + 1) ** 1.1 for i in range(len(names))]  # Zipf: few hot symbols
    hot = ",".join(names[:5])
    tiers: Counter[str] = Counter()
    stale = 0
    per_day = []
    for _ in range(days):
        day_tiers: Counter[str] = Counter()
        for _read in range(reads):
            api = rng.choice(apis)
            template = rng.choices([m[1] for m in MIX], [m[0] for m in MIX])[0]
            sym = rng.choices(names, weights)[0]
            path, _, query = template.format(s=sym, hot=hot).partition("?")
            reply = api.handle({"REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": query})
            assert reply.status == 200, (path, query, reply.status)
            headers = dict(reply.headers)
            tier = headers["X-Cache"]
            day_tiers["hit" if tier == "partial" else tier] += 1
            if path.startswith("/v1/bars/"):
                current = writer.raw.stat(daily_name(sym))
                served = int(headers["ETag"].strip('"').split("-")[0])
                stale += current is None or served != current.generation
            else:
                for result in json.loads(reply.body)["results"]:
                    current = writer.raw.stat(daily_name(result["symbol"]))
                    stale += current is None or result["generation"] != current.generation
        per_day.append(day_tiers)
        tiers.update(day_tiers)
        for sym in names:  # the daily write wave: one new bar per symbol
            obj = writer.raw.read(daily_name(sym))
            assert obj is not None
            bars, actions = decode_daily(obj.data)
            last = bars.column("date")[-1].as_py()
            row = bars.slice(bars.num_rows - 1).to_pylist()[0]
            row["date"] = last + timedelta(days=3 if last.weekday() == 4 else 1)
            bars = pa.concat_tables([bars, pa.Table.from_pylist([row], schema=bars.schema)])
            writer.raw.write(
                daily_name(sym),
                encode_daily(bars, actions),
                if_generation_match=obj.info.generation,
            )
    total = sum(tiers.values())
    hits = tiers["hit-l1"] + tiers["hit"]
    return {
        "requests": total,
        "hit_rate": hits / total,
        "l1": tiers["hit-l1"] / total,
        "redis": tiers["hit"] / total,
        "stale": stale,
        "first_day": (per_day[0]["hit-l1"] + per_day[0]["hit"]) / reads,
        "later_days": float(
            np.mean([(d["hit-l1"] + d["hit"]) / reads for d in per_day[1:]]) if days > 1 else 0
        ),
    }


# --------------------------------------------------------------------------- main


def run(seconds: float, rounds: int, clients: int, quick: bool = False) -> list[Row]:
    from barlake.localredis import start_redis

    tmp = Path(tempfile.mkdtemp(prefix="barlake-bench-api-"))
    started: list[Emulator] = []
    try:
        lake = tmp / "lake"
        symbols = build_lake(lake, 40)
        redis = start_redis(tmp / "redis")
        started.append(redis)
        redis_url = redis.env["BARLAKE_REDIS_URL"]
        (tmp / "hello").mkdir()
        (tmp / "hello" / "main.py").write_text(HELLO)
        base_env = {"BARLAKE_LAKE_DIR": str(lake), "BARLAKE_CACHE": "redis"}
        base_env["BARLAKE_REDIS_URL"] = redis_url
        hello = start_function("hello", tmp / "hello", "http", tmp / "logs-hello", {})
        started.append(hello)
        one_year = len(fetch_body(lake, symbols[0]))
        hello_body = start_function(
            "hello", tmp / "hello", "http", tmp / "logs-hello-body", {"HELLO_BYTES": str(one_year)}
        )
        started.append(hello_body)
        api = start_function("api", FUNCTIONS / "api", "http", tmp / "logs-api", base_env)
        started.append(api)
        no_l1_env = {**base_env, "BARLAKE_CACHE_MEMORY_MB": "0"}
        api_no_l1 = start_function("api", FUNCTIONS / "api", "http", tmp / "logs-nol1", no_l1_env)
        started.append(api_no_l1)
        memory_env = {"BARLAKE_LAKE_DIR": str(lake), "BARLAKE_CACHE": "memory"}
        api_memory = start_function("api", FUNCTIONS / "api", "http", tmp / "logs-mem", memory_env)
        started.append(api_memory)
        port = {
            e.name + e.host: int(e.host.rsplit(":", 1)[1])
            for e in (hello, hello_body, api, api_no_l1, api_memory)
        }
        warm(
            port[api.name + api.host],
            [_path("l1", k, symbols) for k in range(10)] + [_path("batch", 0, symbols)],
        )
        warm(port[api_no_l1.name + api_no_l1.host], [_path("redis", k, symbols) for k in range(10)])
        warm(port[api_memory.name + api_memory.host], [_path("l1", k, symbols) for k in range(10)])

        api_port, no_l1_port = port[api.name + api.host], port[api_no_l1.name + api_no_l1.host]
        api_cpu, no_l1_cpu = (api.pid, redis.pid), (api_no_l1.pid, redis.pid)
        bare = Case(
            "bare functions-framework hello",
            "bare",
            port[hello.name + hello.host],
            pgids=(hello.pid,),
        )
        cases = [
            Case(
                f"bare handler, same {one_year:,} bytes",
                "bare-body",
                port[hello_body.name + hello_body.host],
                pgids=(hello_body.pid,),
            ),
            Case("L1 hit — 1 year JSON", "l1", api_port, pgids=api_cpu),
            Case("Redis hit — 1 year JSON", "redis", no_l1_port, pgids=no_l1_cpu),
            Case(
                "memory-cache hit (embedded) — 1 year JSON",
                "l1",
                port[api_memory.name + api_memory.host],
                pgids=(api_memory.pid,),
            ),
            Case("miss — 1 year JSON", "miss-json", api_port, pgids=api_cpu),
            Case("miss — 20 years Parquet", "miss-parquet", api_port, pgids=api_cpu),
            Case("batch of 20 — 1 year JSON each (warm)", "batch", api_port, pgids=api_cpu),
        ]
        with ProcessPoolExecutor(clients) as pool:
            run_round(pool, bare, symbols, 0.5, clients)  # warm the pool and the servers
            bare.rps.clear(), bare.latencies.clear(), bare.server_ms.clear()
            for r in range(rounds):
                for case in cases:
                    order = [bare, case] if r % 2 == 0 else [case, bare]
                    for c in order:
                        run_round(pool, c, symbols, seconds, clients)
                print(f"  round {r + 1}/{rounds} done", file=sys.stderr)
            for case in cases:
                run_round(pool, case, symbols, seconds, clients, unloaded=True)

        print("\n## API through the HTTP server (functions-framework / gunicorn)\n")
        print(
            f"{'case':<40} {'req/s':>7} {'vs bare':>7} {'p50 ms':>7} {'p99 ms':>7}"
            f" {'handler p50/p99 ms':>19} {'CPU ms/req':>10}"
        )
        for c in [bare, *cases]:
            handler = (
                f"{c.pct(c.server_ms, 0.5):.3f}/{c.pct(c.server_ms, 0.99):.3f}"
                if c.server_ms
                else "-"
            )
            cpu = f"{statistics.median(c.cpu_ms):.3f}" if c.cpu_ms else "-"
            print(
                f"{c.name:<40} {c.median_rps:7.0f} {c.median_rps / bare.median_rps:7.2f} "
                f"{c.pct(c.latencies, 0.5, 1e3):7.2f} {c.pct(c.latencies, 0.99, 1e3):7.2f} "
                f"{handler:>19} {cpu:>10}"
            )
        print(
            "handler: the API's own time (Server-Timing), one client at a time; CPU ms/req: "
            "server processes (+ redis-server for the API) per request, under load."
        )
        imports = cold_import(lake, redis_url)
        print(
            f"\ncold import of functions/api/main.py: {imports['import_s']:.3f} s (median of 5); "
            f"first request after it: {imports['first_memory_s']:.3f} s (memory cache), "
            f"{imports['first_redis_s']:.3f} s (redis); pandas or yfinance imported: "
            f"{imports['heavy']}"
        )
        sim = hit_rate(
            tmp,
            redis_url,
            symbols=40 if quick else 100,
            days=3 if quick else 5,
            reads=1500 if quick else 4000,
            instances=4,
        )
        print(
            f"hit rate, realistic pattern: {sim['hit_rate']:.1%} over {sim['requests']:,} "
            f"requests (L1 {sim['l1']:.1%}, Redis {sim['redis']:.1%}); first day "
            f"{sim['first_day']:.1%}, later days {sim['later_days']:.1%}; stale answers: "
            f"{sim['stale']}"
        )
    finally:
        for e in reversed(started):
            e.stop()

    rows = []
    for c in cases:
        if c.kind == "bare-body":
            continue
        ratio = c.median_rps / bare.median_rps
        lat = f"p50 {c.pct(c.latencies, 0.5, 1e3):.2f} / p99 {c.pct(c.latencies, 0.99, 1e3):.2f} ms"
        srv = f"server p50 {c.pct(c.server_ms, 0.5):.2f} ms"
        if c.kind in ("l1", "redis"):
            goal, ok = f"≥ {HIT_GOAL:.0%} of bare", ratio >= HIT_GOAL
        elif c.kind == "miss-json":
            goal, ok = f"≤ {MISS_GOAL_MS:.0f} ms server", c.pct(c.server_ms, 0.5) <= MISS_GOAL_MS
        else:
            goal, ok = "", None
        rows.append(
            Row(
                f"API {c.name}, req/s ({lat}; {srv})",
                f"{c.median_rps:.0f}",
                f"bare {bare.median_rps:.0f}",
                f"{ratio:.2f}",
                goal,
                verdict(ok) if ok is not None else "",
            )
        )
    rows.append(
        Row(
            "API cold import of functions/api/main.py (python -X importtime)",
            f"{imports['import_s']:.3f} s",
            "",
            "",
            f"≤ {IMPORT_GOAL_S} s, no pandas/yfinance",
            verdict(imports["import_s"] <= IMPORT_GOAL_S and not imports["heavy"]),
        )
    )
    rows.append(
        Row(
            "API cache hit rate, realistic pattern (4 instances, Zipf, daily write wave)",
            f"{sim['hit_rate']:.1%} (L1 {sim['l1']:.1%}, Redis {sim['redis']:.1%})",
            "",
            "",
            "0 stale answers",
            verdict(sim["stale"] == 0),
        )
    )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=1.5, help="length of one timed round")
    ap.add_argument("--rounds", type=int, default=5, help="rounds per case (alternating)")
    ap.add_argument("--clients", type=int, default=3, help="client processes (keep-alive)")
    ap.add_argument("--quick", action="store_true", help="2 rounds of 1 s; a smaller simulation")
    args = ap.parse_args()
    seconds, rounds = (1.0, 2) if args.quick else (args.seconds, args.rounds)
    rows = run(seconds, rounds, args.clients, args.quick)
    print("\n| metric | measured | baseline | ratio | goal | verdict |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.metric} | {r.measured} | {r.baseline} | {r.ratio} | {r.goal} | {r.verdict} |")


if __name__ == "__main__":
    main()
