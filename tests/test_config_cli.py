"""Settings and the command line, run as a user runs them (a real subprocess)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from barlake.config import FUNCTIONS, ConfigError, Settings
from conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]


def test_readme_configuration_table_lists_every_variable_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    found = re.findall(r"^\| `(BARLAKE_[A-Z_]+)` \| (.+?) \| (.+?) \|", readme, re.M)
    rows = {env: (default, by) for env, default, by in found}
    for field_name, field in Settings.__dataclass_fields__.items():
        env = field.metadata["env"]
        assert env in rows, f"README lacks {env} ({field_name})"
        default, by = rows[env]
        assert default == (f"`{field.default}`" if field.default else "(empty)")
        used_by = field.metadata["used_by"]
        expected = {"all"} if set(used_by) == set(FUNCTIONS) else set(used_by) or {"— (local only)"}
        assert set(by.split(", ")) == expected, env
    assert set(rows) == set(Settings.variables())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BARLAKE_BATCH_SIZE": "0"}, "BARLAKE_BATCH_SIZE must be a whole number from 1 to 1000"),
        ({"BARLAKE_BATCH_SIZE": "²"}, "BARLAKE_BATCH_SIZE must be a whole number"),
        (
            {"BARLAKE_OVERLAP_SESSIONS": "100000"},
            "BARLAKE_OVERLAP_SESSIONS must be a whole number from 1 to 250",
        ),
        ({"BARLAKE_DEFAULT_START": "yesterday"}, "BARLAKE_DEFAULT_START is not a date"),
        ({"BARLAKE_STORAGE": "s3"}, "BARLAKE_STORAGE='s3' is not available"),
        ({"BARLAKE_EVENTS": "pubsub"}, "BARLAKE_PROJECT is required with BARLAKE_EVENTS set"),
        ({"BARLAKE_MAX_EVENT_AGE_SECONDS": "-1"}, "BARLAKE_MAX_EVENT_AGE_SECONDS must be"),
        ({"BARLAKE_PROVIDER": "bloomberg"}, "BARLAKE_PROVIDER must be one of yahoo, tiingo"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        Settings.from_env(env)


def barlake(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "barlake.cli", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_heals_every_restatement(tmp_path: Path) -> None:
    proc = barlake("demo", "--lake", str(tmp_path / "lake"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for symbol, rows in (("AAPL", 49), ("AMZN", 1), ("GOOG", 1), ("MSFT", 125)):
        assert f"✓ {symbol}: {rows} stored bars equal the latest recording" in proc.stdout
    assert "healed GOOG" in proc.stdout and "split 20:1" in proc.stdout
    assert "1 in-progress bar set aside" in proc.stdout
    assert (tmp_path / "lake" / "barlake-raw" / "daily" / "MSFT.parquet").exists()
    shown = barlake(
        "show",
        "MSFT",
        "--interval",
        "1wk",
        "--limit",
        "2",
        "--lake",
        str(tmp_path / "lake"),
        cwd=tmp_path,
    )
    assert shown.returncode == 0 and "2025-08-25" in shown.stdout and "True" in shown.stdout


def test_run_from_a_replay_folder_then_status_and_show(tmp_path: Path) -> None:
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
    lake = str(tmp_path / "lake")
    proc = barlake(
        "run", "WSU.DE", "SIX", "--source", f"replay:{replay}", "--lake", lake, cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stderr  # one symbol failed
    assert re.search(r"WSU\.DE\s*│ ok\s*│\s*3 │", proc.stdout)
    assert "not_found: No data found, symbol may be delisted" in proc.stdout
    assert "ok 1 · unchanged 0 · restated 0 · rows quarantined 0 · failed 1" in proc.stdout
    assert re.search(
        r"latest stored bars.*WSU\.DE\s*│ 2023-08-08 .* 33\.2000 .* 10,846", proc.stdout, re.S
    )
    status = barlake("status", "--lake", lake, cwd=tmp_path)
    assert status.returncode == 1 and "1/1 batches · complete" in status.stdout  # SIX failed
    assert "lake: 1 symbols · 3 daily bars" in status.stdout
    shown = barlake("show", "wsu.de", "--lake", lake, cwd=tmp_path)
    assert shown.returncode == 0 and "2023-08-08" in shown.stdout
    assert "history audit: never verified 1" in status.stdout

    audited = barlake(
        "audit", "WSU.DE", "--source", f"replay:{replay}", "--lake", lake, cwd=tmp_path
    )
    assert audited.returncode == 0, audited.stderr
    assert re.search(r"WSU\.DE\s*│ unchanged", audited.stdout)
    assert re.search(r"history audit.*WSU\.DE\s*│ 20\d\d-\d\d-\d\dT.*│ none", audited.stdout, re.S)
    status = barlake("status", "--lake", lake, cwd=tmp_path)
    assert "history audit: never verified 0 · oldest verified 20" in status.stdout
    assert "(WSU.DE)" in status.stdout
    nothing = barlake("audit", "--lake", lake, cwd=tmp_path)
    assert nothing.returncode == 2 and "give symbols (barlake audit AAPL MSFT)" in nothing.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["run", "AAPL;rm"], 2, "invalid symbol 'AAPL;rm'"),
        (["run", "AAPL", "--start", "2024-13-01"], 2, "--start must be a date like 2024-01-31"),
        (
            ["run", "AAPL", "--start", "2024-02-01", "--end", "2024-01-01"],
            2,
            "--start 2024-02-01 is after --end",
        ),
        (["run"], 2, "give symbols"),
        (["run", "--universe", "/nonexistent/file"], 2, "cannot read universe file"),
        (["run", "AAPL", "--source", "replay:/nonexistent"], 2, "replay folder not found"),
        (["show", "NOPE"], 4, "no bars for NOPE"),
        (["show", "AAPL", "--interval", "5m"], 2, "--interval must be one of 1d, 1wk, 1mo, got"),
        (
            ["show", "AAPL", "--adjust", "dividends"],
            2,
            "--adjust must be one of split, total, none",
        ),
        (["status"], 4, "no run yet"),
        (["audit", "--all", "--lake", "missing"], 4, "no lake at missing"),
        (["status", "--lake", "missing"], 4, "no lake at missing"),
        (["status", "--lake", "not-a-lake"], 4, "no lake at not-a-lake"),
        (["show", "AAPL", "--lake", "missing"], 4, "no lake at missing"),
        (["run", "AAPL", "--lake", "a-file"], 2, "is a file, not a folder"),
        (["run", "--universe", "binary.txt"], 2, "is not UTF-8 text"),
    ],
)
def test_bad_input_is_one_line_and_a_documented_exit_code(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    (tmp_path / "lake" / "barlake-raw").mkdir(parents=True)  # an existing, empty lake
    (tmp_path / "not-a-lake").mkdir()
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfeA\x00")
    if "--lake" not in args:
        args = [*args, "--lake", str(tmp_path / "lake")]
    proc = barlake(*args, cwd=tmp_path)
    assert proc.returncode == code
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("barlake: error: ") and message in lines[0]
    assert "Traceback" not in proc.stderr


def test_quickstart_run_without_a_route_to_yahoo_is_one_line_pointing_to_the_demo(
    tmp_path: Path,
) -> None:
    """The README's first command on a machine with no route to Yahoo: the real yfinance
    provider, with every connection refused (a proxy on a closed local port)."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proxy = f"http://127.0.0.1:{port}"
    env = {"https_proxy": proxy, "HTTPS_PROXY": proxy, "http_proxy": proxy, "HTTP_PROXY": proxy}
    proc = barlake(
        "run", "AAPL", "MSFT", "7203.T", "--lake", str(tmp_path / "lake"), cwd=tmp_path, env=env
    )
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("barlake: error: cannot reach Yahoo Finance (")
    assert lines[0].endswith("no network? try the offline demo: barlake demo")
    assert proc.stdout == ""


def test_a_run_left_incomplete_by_a_provider_outage_exits_1(tmp_path: Path) -> None:
    replay = tmp_path / "replay"
    replay.mkdir()
    outage = {
        "request": {"url": "recorded"},
        "response": {"status": 503, "bodyJson": {"chart": None}},
    }
    (replay / "AAA.json").write_text(json.dumps(outage))
    proc = barlake(
        "run", "AAA", "--source", f"replay:{replay}", "--lake", str(tmp_path / "lake"), cwd=tmp_path
    )
    assert proc.returncode == 1, proc.stderr
    assert "transient: HTTP 503" in proc.stdout and "run incomplete" in proc.stdout
