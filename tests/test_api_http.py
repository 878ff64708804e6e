"""The API over real HTTP: functions-framework serving functions/api/main.py in its own process
(as Cloud Run runs it), and `barlake serve`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from apilake import SYMBOLS, open_lake, stages
from barlake.emulators import free_port, start_function, stop_group

FUNCTIONS = Path(__file__).resolve().parents[1] / "functions"


def fetch(url: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_function_over_http_with_upstash_is_fresh_after_a_write_in_another_process(
    tmp_path: Path, upstash
) -> None:
    env = {
        "cache": "upstash",
        "upstash_url": upstash.url,
        "upstash_token": upstash.token,
        "cache_budget_ms": "500",
    }
    writer = open_lake(tmp_path / "lake", stage=stages()[1], **env)
    writer.ingest()
    server = start_function(
        "api",
        FUNCTIONS / "api",
        "http",
        tmp_path / "logs",
        {
            "BARLAKE_LAKE_DIR": str(tmp_path / "lake"),
            "BARLAKE_CACHE": "upstash",
            "BARLAKE_UPSTASH_URL": upstash.url,
            "BARLAKE_UPSTASH_TOKEN": upstash.token,
            "BARLAKE_CACHE_BUDGET_MS": "500",
        },
    )
    try:
        url = f"{server.url}/v1/bars/MSFT?limit=1"
        status, headers, body = fetch(url)
        assert status == 200 and headers["X-Cache"] == "miss"
        assert json.loads(body)["bars"][0]["date"] == "2025-08-15"
        status, headers, again = fetch(url)
        assert headers["X-Cache"] == "hit-l1" and again == body

        writer.next_stage()  # another process writes; the server's L1 still holds 08-15
        status, headers, body = fetch(url)
        assert status == 200 and headers["X-Cache"] == "miss"
        assert json.loads(body)["bars"][0]["date"] == "2025-08-25"

        status, headers, body = fetch(f"{server.url}/v1/health")
        health = json.loads(body)
        assert status == 200 and health["cache"]["backend"] == "ResilientCache"
        assert health["cache"]["status"] == "ok" and health["cache"]["breaker"] == "closed"
        for path in ("/robots.txt", "/v1/bars/A%0AB", "/nope"):
            status, headers, body = fetch(f"{server.url}{path}")
            assert status == 404 and headers["Content-Type"] == "application/json", path
            assert json.loads(body)["error"]["code"] == "no_route"
    finally:
        server.stop()


def _barlake(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "barlake.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_barlake_serve_serves_the_embedded_lake(tmp_path: Path) -> None:
    lake = open_lake(tmp_path / "lake")
    lake.ingest()
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "barlake.cli", "serve", "--port", str(port), "--lake", "lake"],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if fetch(f"{base}/v1/health")[0] == 200:
                    break
            except OSError:
                time.sleep(0.2)
        status, headers, body = fetch(f"{base}/v1/bars?symbols={','.join(SYMBOLS)}&format=csv")
        assert status == 200 and headers["Content-Type"] == "text/csv; charset=utf-8"
        assert {line.split(",")[0] for line in body.decode().splitlines()[1:]} == set(SYMBOLS)
        status, headers, body = fetch(f"{base}/v1/bars/MSFT", method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) > 1000
    finally:
        stop_group(proc.pid, reap=proc.poll)
        log.close()
    assert proc.poll() is not None and proc.returncode in (0, -signal.SIGTERM)
    assert b"serving the lake at lake on http://127.0.0.1" in (tmp_path / "serve.log").read_bytes()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["serve", "--lake", "nowhere"], 4, "no lake at nowhere"),
        (["serve", "--port", "70000"], 2, "--port must be from 1 to 65535"),
    ],
)
def test_barlake_serve_refuses_bad_input_in_one_line(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    result = _barlake(*args, cwd=tmp_path)
    assert result.returncode == code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"barlake: error: {message}")


def test_the_first_request_keeps_pandas_and_yfinance_out(tmp_path: Path) -> None:
    """The api function's cold path: its import and its first answers (split-adjusted bars, as
    stored) load neither pandas (a 0.75 s import pyarrow would otherwise trigger) nor
    yfinance. Views computed with numpy or the exchange calendar (adjust=total/none, weekly
    bars aggregated on the fly) load pandas when first asked for, and work."""
    lake = open_lake(tmp_path / "lake")
    lake.ingest()
    probe = """
import json, sys
import main
from barlake.api.function import get_api
def get(query):
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/v1/bars/MSFT", "QUERY_STRING": query}
    return get_api().handle(env).status
first = [get("limit=5"), get("format=parquet"), get("format=csv&start=2025-08-01")]
light = not ({"pandas", "yfinance"} & set(sys.modules))
calendar = [get("interval=1wk&adjust=none"), get("adjust=total")]
import pyarrow as pa
frame = pa.table({"a": [1, 2]}).to_pandas()
print(json.dumps([first, light, calendar, "pandas" in sys.modules, len(frame)]))
"""
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=FUNCTIONS / "api",
        env={**os.environ, "BARLAKE_LAKE_DIR": str(tmp_path / "lake")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got == [[200, 200, 200], True, [200, 200], True, 2]
