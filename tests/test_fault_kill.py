"""The fault suite's crash test: `barlake run` killed with SIGKILL at random moments, then run
again, must leave the lake equal to one clean run — daily objects, weekly/monthly bars,
profiles and state — with no temporary left behind.

Each trial is a real subprocess (the CLI, embedded lake, replaying recorded-format CSV answers)
killed by its PID at a random point of its run, then the same command run to completion. The
kill points are drawn from a seeded generator over the clean run's measured duration, so a
failure is reproducible. Bounded: TRIALS trials (4; BARLAKE_FAULT_TRIALS=N for more) of 2–3
runs each (marked slow; CI runs it once).
"""

from __future__ import annotations

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from barlake.adapters.sqlite_state import SqliteStateStore
from barlake.core.calendar import calendar_for
from barlake.core.codec import decode_daily, decode_periods

REPO = Path(__file__).resolve().parents[1]
SYMBOLS = [f"K{i:02d}" for i in range(16)]
TRIALS = int(os.environ.get("BARLAKE_FAULT_TRIALS", "4"))  # more, for a longer soak
SEED = 20261202


def write_replay(folder: Path) -> None:
    """Four years of sessions per symbol in yfinance's CSV shape (a random walk, seeded)."""
    folder.mkdir(parents=True)
    days = calendar_for("K00").sessions(date(2021, 1, 4), date(2024, 12, 31)).to_pylist()
    rng = random.Random(SEED)
    for symbol in SYMBOLS:
        price = rng.uniform(10, 500)
        with (folder / f"{symbol}.csv").open("w", newline="") as fh:
            out = csv.writer(fh)
            out.writerow(["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"])
            for day in days:
                price *= 1 + rng.gauss(0, 0.01)
                o, c = price * (1 + rng.gauss(0, 0.003)), price
                hi, lo = max(o, c) * 1.01, min(o, c) * 0.99
                out.writerow([day.isoformat(), o, hi, lo, c, c * 0.97, rng.randint(1000, 10**6)])


def command(lake: Path, replay: Path) -> list[str]:
    cli = [sys.executable, "-m", "barlake.cli", "run", *SYMBOLS]
    return [*cli, "--lake", str(lake), "--source", f"replay:{replay}"]


def env() -> dict[str, str]:
    out = {**os.environ, "BARLAKE_LOG_LEVEL": "CRITICAL"}
    out.pop("BARLAKE_LAKE_DIR", None)
    return out


def _start(lake: Path, replay: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command(lake, replay),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env(),
        cwd=REPO,
    )


def _writing(proc: subprocess.Popen[bytes], lake: Path) -> float:
    """Wait until the run has written its first daily object (the ingest has begun writing:
    what follows is the rest of the writes, the events and the derived builds); when."""
    daily = lake / "barlake-raw" / "daily"
    while proc.poll() is None and not (daily.is_dir() and any(daily.iterdir())):
        time.sleep(0.002)
    return time.monotonic()


def run_to_completion(lake: Path, replay: Path) -> float:
    """Run to the end; how long the run worked after its first daily write."""
    proc = _start(lake, replay)
    writing = _writing(proc, lake)
    _, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr.decode()[-2000:]
    return time.monotonic() - writing


def kill_at(lake: Path, replay: Path, after_s: float) -> bool:
    """Start the run, SIGKILL it (by its PID) `after_s` after its first daily write (at once
    when the lake already has daily objects); True if it was still running then."""
    proc = _start(lake, replay)
    _writing(proc, lake)
    try:
        proc.wait(timeout=after_s)
        return False
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        return True
    finally:
        assert proc.stderr is not None
        proc.stderr.close()


def snapshot(lake: Path) -> dict[str, Any]:
    """What a user reads, minus what names a particular run or write (generations, run ids)."""
    raw, derived = lake / "barlake-raw", lake / "barlake-derived"
    daily = {
        p.name: [t.to_pylist() for t in decode_daily(p.read_bytes())]
        for p in sorted((raw / "daily").glob("*.parquet"))
    }
    periods = {
        f"{kind}/{p.name}": decode_periods(p.read_bytes()).to_pylist()
        for kind in ("weekly", "monthly")
        for p in sorted((derived / kind).glob("*.parquet"))
    }
    profiles = {
        p.name: _without_generations(json.loads(p.read_text()))
        for p in sorted((derived / "profiles").glob("*.json"))
    }
    state = SqliteStateStore(lake / "state.sqlite")
    return {
        "daily": daily,
        "periods": periods,
        "profiles": profiles,
        "state_profiles": [_without_generations(dict(p)) for p in state.list_profiles()],
        "registry": state.list_symbols(active_only=False),
        "quarantine": {s: [(q.date, q.reason) for q in state.quarantine(s)] for s in SYMBOLS},
        "restatements": {s: len(state.restatements(s)) for s in SYMBOLS},
        "temporaries": sorted(p.name for p in lake.glob("*/.barlake/tmp/*")),
    }


def _without_generations(profile: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in profile.items() if k not in ("generation", "object_bytes")}


@pytest.mark.slow
def test_kill_9_at_random_points_then_rerun_converges_to_a_clean_run(tmp_path: Path) -> None:
    replay = tmp_path / "replay"
    write_replay(replay)
    clean = tmp_path / "clean"
    duration = run_to_completion(clean, replay)
    want = snapshot(clean)
    assert len(want["daily"]) == len(SYMBOLS) and len(want["profiles"]) == len(SYMBOLS)
    assert want["temporaries"] == []

    rng = random.Random(SEED)
    converged, killed, report = 0, 0, []
    for trial in range(TRIALS):
        lake = tmp_path / f"trial-{trial}"
        # 1–2 kills per trial, anywhere from the first daily write to the end of the run (the
        # writes, the events, the weekly/monthly/profile builds); a second kill lands on the
        # rerun's own start (its lake already holds daily objects)
        for _ in range(1 + trial % 2):
            killed += kill_at(lake, replay, rng.uniform(0, duration))
        run_to_completion(lake, replay)
        got = snapshot(lake)
        same = {k: got[k] == want[k] for k in want}
        report.append((trial, [k for k, v in same.items() if not v]))
        converged += all(same.values())
    print(
        f"\nkill -9: {TRIALS} trials, {killed} kills mid-run, {converged} converged "
        f"(a clean run works {duration:.2f} s after its first daily write)"
    )
    assert converged == TRIALS, report
    assert killed >= TRIALS  # the kills did land mid-run
