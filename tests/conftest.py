"""Shared test helpers: fixture paths and small bar-table builders."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from barlake.core.schema import BAR_SCHEMA
from barlake.emulators import (
    Emulator,
    EmulatorUnavailable,
    start_fake_gcs,
    start_firestore,
    start_pubsub,
)

FIXTURES = Path(__file__).parent / "fixtures" / "yahoo"


def bars(symbol: str, rows: list[tuple]) -> pa.Table:
    """rows of (date, open, high, low, close, adj_close, volume)."""
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in range(7)]
    return pa.Table.from_pydict(
        {
            "symbol": [symbol] * len(rows),
            "date": list(cols[0]),
            "open": list(cols[1]),
            "high": list(cols[2]),
            "low": list(cols[3]),
            "close": list(cols[4]),
            "adj_close": list(cols[5]),
            "volume": list(cols[6]),
        },
        schema=BAR_SCHEMA,
    )


def flat_bars(symbol: str, days: list[date], price: float = 10.0, volume: int = 100) -> pa.Table:
    return bars(symbol, [(d, price, price, price, price, price, volume) for d in days])


def weekdays(start: date, n: int) -> list[date]:
    out, d = [], start
    while len(out) < n:
        if d.weekday() < 5:
            out.append(d)
        d += timedelta(days=1)
    return out


@pytest.fixture
def fixtures() -> Path:
    return FIXTURES


# --------------------------------------------------------------------------- emulators
# Started once per session on free ports, stopped by process group. Where the program is
# missing they skip with the reason; with BARLAKE_REQUIRE_EMULATORS=1 (set by .ci/run) a
# missing emulator fails instead, so CI can never pass by skipping.

EMULATOR_PROJECT = "barlake-test"


def _emulator(start: Callable[[], Any]) -> Any:
    try:
        return start()
    except EmulatorUnavailable as exc:
        if os.environ.get("BARLAKE_REQUIRE_EMULATORS") == "1":
            pytest.fail(f"BARLAKE_REQUIRE_EMULATORS=1 but {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def require_emulators() -> Callable[[Callable[[], Any]], Any]:
    """Run a start function that may raise EmulatorUnavailable: skip, or fail in CI."""
    return _emulator


def _session_emulator(
    factory: pytest.TempPathFactory, name: str, start: Callable[[Path], Emulator]
) -> Iterator[Emulator]:
    emulator = _emulator(lambda: start(factory.mktemp(name)))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    yield from _session_emulator(
        tmp_path_factory, "pubsub", lambda logs: start_pubsub(EMULATOR_PROJECT, logs)
    )


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    yield from _session_emulator(
        tmp_path_factory, "firestore", lambda logs: start_firestore(EMULATOR_PROJECT, logs)
    )


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    yield from _session_emulator(tmp_path_factory, "gcs", start_fake_gcs)


@pytest.fixture
def emulator_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Emulator], None]:
    """Point Google clients at an emulator for one test (sets its *_EMULATOR_HOST variables)."""

    def use(emulator: Emulator) -> None:
        for key, value in emulator.env.items():
            monkeypatch.setenv(key, value)

    return use


# --------------------------------------------------------------------------- redis
# A real redis-server per session (free port, no persistence, stopped by PID), and an Upstash
# REST bridge in front of it so the real upstash-redis client talks to real Redis. Same skip /
# fail rule as the emulators: BARLAKE_REQUIRE_EMULATORS=1 turns a missing redis-server into a
# failure.


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    from barlake.localredis import start_redis

    logs = tmp_path_factory.mktemp("redis")
    server = _emulator(lambda: start_redis(logs))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def upstash_bridge(redis_server: Emulator):
    from barlake.localredis import UpstashBridge

    bridge = UpstashBridge(redis_server.env["BARLAKE_REDIS_URL"])
    yield bridge
    bridge.stop()


@pytest.fixture
def redis_url(redis_server: Emulator) -> str:
    """The session's Redis, emptied for this test."""
    import redis

    url = redis_server.env["BARLAKE_REDIS_URL"]
    with redis.Redis.from_url(url) as client:
        client.flushall()
    return url


@pytest.fixture
def upstash(upstash_bridge, redis_url: str):
    """The Upstash bridge over an emptied Redis, behaving normally for this test."""
    upstash_bridge.fault, upstash_bridge.delay_s = None, 0.0
    yield upstash_bridge
    upstash_bridge.fault, upstash_bridge.delay_s = None, 0.0


# --------------------------------------------------------------------------- browser
# Headless Debian Chromium for the dashboard tests (tests/browser.py): skips with the reason
# where it is missing, fails in CI.
from browser import browser  # noqa: E402, F401
