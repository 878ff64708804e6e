"""`barlake stack`: starts what it says, stops exactly that, and can start again.

The full flow through the stack is tests/test_e2e_stack.py; this is the process management.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from barlake import stack


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"


def test_down_never_kills_a_process_that_merely_reuses_a_recorded_pid(tmp_path: Path) -> None:
    """A stale stack.json naming a PID now owned by something else leaves it alone."""
    other = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        info = stack.StackInfo(
            str(tmp_path),
            "p",
            {},
            [stack.Component("pubsub", other.pid, "http://x", "log", started="1")],
        )
        info.save()
        assert stack.down(tmp_path) == []
        assert _running(other.pid)
    finally:
        other.kill()
        other.wait()


def test_up_down_up_down_leaves_nothing_running(
    tmp_path: Path, require_emulators: Callable[[Callable[[], Any]], Any]
) -> None:
    pids: list[int] = []
    for _ in range(2):  # the second `up` in the same folder starts clean (no 409 on buckets)
        info = require_emulators(lambda: stack.up(tmp_path, {"BARLAKE_PROVIDER": "yahoo"}))
        names = [c.name for c in info.components]
        assert names[:3] == ["pubsub", "firestore", "fake-gcs"]
        assert {"fn-dispatch", "fn-ingest", "fn-weekly", "fn-profile"} <= set(names)
        assert stack.StackInfo.load(tmp_path) == info
        pids += [c.pid for c in info.components]
        stopped = stack.down(tmp_path)
        assert sorted(c.pid for c in stopped) == sorted(c.pid for c in info.components)
    assert not any(_running(pid) for pid in pids)
    assert stack.StackInfo.load(tmp_path) is None


def test_stack_env_prints_exports_for_the_running_stack(tmp_path: Path) -> None:
    info = stack.StackInfo(str(tmp_path), "p", {"PUBSUB_EMULATOR_HOST": "127.0.0.1:1"}, [])
    info.save()
    out = subprocess.run(
        [sys.executable, "-m", "barlake.cli", "stack", "env", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == "export PUBSUB_EMULATOR_HOST=127.0.0.1:1\n"
    missing = subprocess.run(
        [sys.executable, "-m", "barlake.cli", "stack", "env", "--dir", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 2 and "no stack running" in missing.stderr


def test_down_stops_every_component_at_once(tmp_path: Path) -> None:
    """Each component takes a while to exit after SIGTERM (as the emulators do): `down` sends
    every SIGTERM before any component has exited, instead of waiting on each in turn."""
    events = tmp_path / "events"
    slow_exit = (
        "import signal, sys, time\n"
        "name, path = sys.argv[1], sys.argv[2]\n"
        "def stop(*_):\n"
        "    open(path, 'a').write(f'term {name}\\n')\n"
        "    time.sleep(1.0)\n"
        "    open(path, 'a').write(f'exit {name}\\n')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "open(path, 'a').write(f'ready {name}\\n')\n"
        "time.sleep(60)\n"
    )
    names = ["pubsub", "firestore", "gcs", "fn-api"]
    procs = [
        subprocess.Popen([sys.executable, "-c", slow_exit, n, str(events)], start_new_session=True)
        for n in names
    ]
    try:
        while not events.is_file() or events.read_text().count("ready") < len(names):
            time.sleep(0.05)
        components = [
            stack.Component(n, p.pid, "http://x", "log", started=stack._start_time(p.pid))
            for n, p in zip(names, procs, strict=True)
        ]
        stack.StackInfo(str(tmp_path), "p", {}, components).save()
        stopped = stack.down(tmp_path)
        assert sorted(c.name for c in stopped) == sorted(names)
        lines = [x for x in events.read_text().splitlines() if not x.startswith("ready")]
        first_exit = next(i for i, x in enumerate(lines) if x.startswith("exit"))
        assert sum(x.startswith("term") for x in lines[:first_exit]) == len(names), lines
    finally:
        for p in procs:
            p.kill()
            p.wait()
