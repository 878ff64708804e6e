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


@pytest.fixture(scope="session")
def pubsub_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    logs = tmp_path_factory.mktemp("pubsub")
    emulator = _emulator(lambda: start_pubsub(EMULATOR_PROJECT, logs))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    logs = tmp_path_factory.mktemp("firestore")
    emulator = _emulator(lambda: start_firestore(EMULATOR_PROJECT, logs))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    logs = tmp_path_factory.mktemp("gcs")
    emulator = _emulator(lambda: start_fake_gcs(logs))
    yield emulator
    emulator.stop()


@pytest.fixture
def emulator_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Emulator], None]:
    """Point Google clients at an emulator for one test (sets its *_EMULATOR_HOST variables)."""

    def use(emulator: Emulator) -> None:
        for key, value in emulator.env.items():
            monkeypatch.setenv(key, value)

    return use
