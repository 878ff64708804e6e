"""The CLI as an operator meets it, through the real `barlake` process: every error one line
with the README's exit code (Typer's usage errors included), backfill and status ending on the
run's real outcome, `demo` writing where it is told, `--lake` refused where it cannot apply, and
`serve` on a busy port. (Following a run through the stack: tests/test_e2e_stack.py.)"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FIXTURES

STACK_ENV = {  # what `barlake stack env` exports (the values need no running stack to parse)
    "BARLAKE_STORAGE": "gcs",
    "BARLAKE_EVENTS": "pubsub",
    "BARLAKE_STATE": "firestore",
    "BARLAKE_PROJECT": "barlake-local",
}


def barlake(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("BARLAKE_")}
    return subprocess.run(
        [sys.executable, "-m", "barlake.cli", *args],
        cwd=cwd,
        env={**base, "COLUMNS": "200", **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line_error(proc: subprocess.CompletedProcess, code: int, message: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("barlake: error: ") and message in lines[0], lines[0]
    assert "Traceback" not in proc.stderr and "╭" not in proc.stderr


# --------------------------------------------------------------------------- every error path

ERRORS = [
    # Typer/Click usage errors, once boxed panels
    (["nope"], 2, "No such command 'nope'"),
    (["show"], 2, "Missing argument 'symbol'"),
    (["show", "AAPL", "--bogus"], 2, "No such option: --bogus"),
    (["show", "AAPL", "--limit", "abc"], 2, "Invalid value for '--limit'"),
    (["run", "AAPL", "--start"], 2, "Option '--start' requires an argument"),
    (["backfill", "--nope"], 2, "No such option: --nope"),
    (["demo", "--bogus"], 2, "No such option: --bogus"),
    (["status", "--run"], 2, "Option '--run' requires an argument"),
    (["serve", "--port", "x"], 2, "Invalid value for '--port'"),
    (["stack", "up", "--nope"], 2, "No such option: --nope"),
    (["stack", "nope"], 2, "No such command 'nope'"),
    # each command's own checks
    (["run"], 2, "give symbols"),
    (["backfill"], 2, "give symbols"),
    (["backfill", "A;B"], 2, "invalid symbol"),
    (["backfill", "AAPL", "--start", "2024-02-30"], 2, "--start must be a date"),
    (["status", "--run", "nope"], 4, "no run nope"),
    (["show", "NOPE"], 4, "no bars for NOPE"),
    (["show", "NOPE", "--lake", "missing"], 4, "no lake at missing"),
    (["serve", "--port", "0"], 2, "--port must be from 1 to 65535"),
    (["demo", "--lake", "occupied"], 2, "is not empty and was not written by the demo"),
    (["stack", "env", "--dir", "nowhere"], 2, "no stack running from nowhere"),
    (["deadletter", "list"], 2, "dead letters live in Pub/Sub"),
    (["deadletter", "replay", "--run", "x"], 2, "the embedded lake keeps none"),
    (["deadletter", "list", "--nope"], 2, "No such option: --nope"),
    (["stack", "up", "--provider", "replay:/nonexistent"], 2, "replay folder not found"),
]


@pytest.mark.parametrize(("args", "code", "message"), ERRORS, ids=[" ".join(e[0]) for e in ERRORS])
def test_every_error_is_one_line_with_its_exit_code(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    (tmp_path / "occupied").mkdir()
    (tmp_path / "occupied" / "notes.txt").write_text("mine")
    (tmp_path / "lake" / "barlake-raw").mkdir(parents=True)  # an existing, empty lake
    one_line_error(barlake(*args, cwd=tmp_path), code, message)


def test_help_still_prints_and_exits_0(tmp_path: Path) -> None:
    for args in ([], ["--help"], ["stack"], ["show", "--help"]):
        proc = barlake(*args, cwd=tmp_path)
        assert proc.returncode == 0 and "Usage" in proc.stdout and proc.stderr == "", args


def test_serve_on_a_busy_port_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "lake" / "barlake-raw").mkdir(parents=True)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = barlake("serve", "--port", str(port), "--lake", "lake", cwd=tmp_path)
    one_line_error(proc, 2, f"cannot listen on 127.0.0.1:{port}: Address already in use")
    assert proc.stdout == ""


# --------------------------------------------------------------------------- --lake and demo


@pytest.mark.parametrize("command", [["status"], ["show", "AAPL"], ["run", "AAPL"], ["demo"]])
def test_lake_is_refused_under_the_stack_env(tmp_path: Path, command: list[str]) -> None:
    proc = barlake(*command, "--lake", "somewhere", cwd=tmp_path, env=STACK_ENV)
    one_line_error(proc, 2, "--lake names a local folder, but BARLAKE_STORAGE=gcs")


def test_demo_writes_where_it_is_told_and_replaces_only_its_own_lake(tmp_path: Path) -> None:
    proc = barlake("demo", cwd=tmp_path)  # ./lake, like every command
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "lake" / "barlake-raw" / "daily" / "MSFT.parquet").is_file()
    proc = barlake("demo", cwd=tmp_path, env={"BARLAKE_LAKE_DIR": "from-env"})
    assert proc.returncode == 0 and (tmp_path / "from-env" / ".barlake-demo").is_file()
    (tmp_path / "lake" / "stray").write_text("left by the first demo's user")
    again = barlake("demo", "--lake", "lake", cwd=tmp_path)  # its own lake: afresh, same result
    assert again.returncode == 0, again.stderr
    assert not (tmp_path / "lake" / "stray").exists()
    assert "✓ MSFT: 125 stored bars equal the latest recording" in again.stdout
    status = barlake("status", cwd=tmp_path)
    assert status.returncode == 0 and "1/1 batches · complete" in status.stdout


# --------------------------------------------------------------------------- backfill and status


def _replay(tmp_path: Path) -> Path:
    replay = tmp_path / "replay"
    replay.mkdir()
    shutil.copy(
        FIXTURES / "chart_api" / "chart-WSU.DE-2023-08-04-to-2023-08-09.json",
        replay / "WSU.DE.json",
    )
    shutil.copy(
        FIXTURES / "chart_api_errors" / "historical-via-chart-SIX-2020-01-01-to-2020-01-03.json",
        replay / "SIX.json",
    )
    outage = {"request": {"url": "recorded"}, "response": {"status": 503, "bodyJson": None}}
    (replay / "AAA.json").write_text(json.dumps(outage))
    return replay


def test_embedded_backfill_exits_like_run(tmp_path: Path) -> None:
    env = {"BARLAKE_PROVIDER": f"replay:{_replay(tmp_path)}"}
    ok = barlake("backfill", "WSU.DE", cwd=tmp_path, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "ok 1 · unchanged 0" in ok.stdout
    failed = barlake("backfill", "WSU.DE", "SIX", cwd=tmp_path, env=env)
    assert failed.returncode == 1, failed.stderr
    assert "not_found" in failed.stdout


def test_an_embedded_run_left_incomplete_reads_failed_not_in_progress(tmp_path: Path) -> None:
    env = {"BARLAKE_PROVIDER": f"replay:{_replay(tmp_path)}"}
    proc = barlake("backfill", "AAA", cwd=tmp_path, env=env)
    assert proc.returncode == 1, proc.stderr
    assert "run incomplete" in proc.stdout
    status = barlake("status", cwd=tmp_path)
    assert status.returncode == 1, status.stderr
    assert "1/1 batches · failed" in status.stdout and "in progress" not in status.stdout


def test_embedded_backfill_without_a_route_to_yahoo_exits_3(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proxy = f"http://127.0.0.1:{port}"
    env = {"https_proxy": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "HTTP_PROXY": proxy}
    proc = barlake("backfill", "AAPL", cwd=tmp_path, env=env)
    one_line_error(proc, 3, "cannot reach the provider")


def test_cli_and_api_give_the_same_generation_at_every_interval(tmp_path: Path) -> None:
    """Once the weekly/monthly objects' own generation in the CLI and the daily one in the API."""
    import re

    from barlake.api.app import build_api
    from barlake.config import Settings
    from barlake.demo import run_demo

    run_demo(tmp_path / "lake")
    api = build_api(Settings.from_env({}, lake_dir=str(tmp_path / "lake")))
    for interval in ("1d", "1wk", "1mo"):
        for adjust in ("split", "total"):
            shown = barlake(
                "show", "MSFT", "--interval", interval, "--adjust", adjust, cwd=tmp_path
            )
            assert shown.returncode == 0, shown.stderr
            cli = int(re.search(r"generation (\d+)", shown.stdout).group(1))
            reply = api.handle(
                {
                    "REQUEST_METHOD": "GET",
                    "PATH_INFO": "/v1/bars/MSFT",
                    "QUERY_STRING": f"interval={interval}&adjust={adjust}&format=json",
                }
            )
            assert json.loads(reply.body)["generation"] == cli, (interval, adjust)
